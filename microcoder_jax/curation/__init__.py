"""Dataset curation: collect -> process -> verify -> select by difficulty.

    python -m microcoder_jax.curation --inputs lcb.jsonl --out_dir out/ ...

Modules: `pipeline` (the stages in order, `CurateConfig`, `curate`), one per
stage (`sources`, `filters`, `verify`, `difficulty`), `report` (the Markdown
report) and `__main__` (the CLI). See docs/curation.md.
"""

from microcoder_jax.curation.pipeline import STAGES, CurateConfig, curate
