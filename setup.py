"""microcoder_jax: JAX-native MicroCoder-GRPO (arXiv 2603.07777)."""
import setuptools

_CORE = [
    "jax>=0.7",
    "flax>=0.12",
    "optax",
    "orbax-checkpoint",
    "transformers>=4.51",
    "safetensors",
    "huggingface_hub",
    "tensorflow-datasets",
    "array_record",
    "importlib_resources",  # tensorflow-datasets' builders need it, TF does not
    "ml-collections",
    "numpy",
    "chex",
    "tqdm",
    "tensorboardX",
    "matplotlib",
    "absl-py",
    "jinja2",  # transformers' apply_chat_template renders chat templates with it
]

setuptools.setup(
    name="microcoder_jax",
    version="0.1.0",
    description="MicroCoder-GRPO reinforcement learning for code LLMs in JAX.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["microcoder_jax", "microcoder_jax.*"]),
    # The demo's policy, tokenizers and synthetic problems: a wheel (or a
    # non-editable install) must carry them.
    package_data={"microcoder_jax": ["data/bundled/*.jsonl", "data/bundled/*/*"]},
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.11",  # jax >= 0.7 publishes no wheels for 3.10
    install_requires=_CORE,
    extras_require={
        # torch is only the HF reference for parity tests; CPU build, pinned.
        # jupytext: checks that colab/*.ipynb match their paired .py scripts;
        # nbclient + ipykernel: CI executes each notebook in a Jupyter kernel.
        "test": ["pytest", "pytest-xdist", "torch==2.13.0", "jupytext", "nbclient", "ipykernel"],
        "tpu": ["jax[tpu]"],
        "gpu": ["jax[cuda12]"],
        "colab": ["jupytext", "nbclient", "ipykernel"],
        # benchmarks/peer_trainers.py: TRL runs beside us on the same work.
        # tunix 0.1.7 pins safetensors<0.8, which transformers 5 refuses, so
        # it lives in its own environment (benchmarks/README.md, TUNIX_PYTHON).
        "bench": ["trl==1.16.0"],
    },
)
