"""Builds the attack corpus: hostile programs, each labelled with what a
correct judge decides.

  python tests/data/evaluator/build_attacks.py   # rewrites attack_*.jsonl

Probes print "contained" when every attempt of their attack failed (and name
the first that succeeded otherwise), so `expect: pass` means "contained".
Host canaries at `CANARY_DIR` are created and checked by
tests/evaluator/test_evaluator_attacks.py, never real system files. Fields:
`class` (the attack class of the issue that motivated it), `note`, `expect`
(the verdict), optional `prompt_opens_think`, `repeat` (answer learning:
that many sequential attempts) and `code_parts` ([[text, times], ...] for
programs too large to store).
"""
import os
import textwrap

from build_corpus import _write  # run as a script from this folder

CANARY_DIR = "/tmp/mcj-canary-7c41"
ABSTRACT = "mcj-canary-7c41"
PROBLEMS, SAMPLES = [], []


def problem(pid, tests, question="", **extra):
  kind = "functional" if "fn_name" in extra else "stdin"
  PROBLEMS.append(dict(id=pid, question=question, tests=[
      dict(input=i, output=o, testtype=kind) for i, o in tests], **extra))


def attack(pid, code, cls, expect, note, **extra):
  code = textwrap.dedent(code).strip("\n") + "\n" if code else code
  SAMPLES.append(dict(id=pid, code=code, **{"class": cls}, expect=expect, note=note, **extra))


HOST, LEARN, LIMITS, FAKE, BATCH, COMPARE, CORRECT, THINK = (
    "host", "answer_learning", "limits", "verdict_faking", "batch", "comparator",
    "correct_rejected", "thinking")

# ------------------------------------------------------------ host reach --
problem("probe", [("go\n", "contained\n")])
problem("add", [("1 2\n", "3\n"), ("-5 5\n", "0\n"), ("7 8\n", "15\n")])

PROBE = """
    import os, socket, errno
    CANARY = %r
    bad = []
    def attempt(name, fn):
        try:
            fn()
            bad.append(name)
        except OSError:
            pass
    victim = CANARY + "/victim"
    lib = os.__file__
    for target in (victim, lib, "/usr/lib"):
        attempt("chmod " + target, lambda: os.chmod(target, 0o4777))
        attempt("utime " + target, lambda: os.utime(target, (1, 1)))
        attempt("setxattr " + target, lambda: os.setxattr(target, "user.mcj", b"1"))
        attempt("chown " + target, lambda: os.chown(target, 0, 0))
    attempt("write " + lib, lambda: open(lib, "a").write("#"))
    attempt("write victim", lambda: open(victim, "a").write("pwned"))
    # (Directories that only hold the minimal root's own mount points, such
    # as /root on a pyenv install, exist but are empty skeletons.)
    for path in (CANARY, victim, "/etc/passwd", "/etc/shadow", "/root/.bashrc",
                 "/root/.ssh", "/home", "/var", "/work", "/proc/1/root", "/sys/kernel"):
        attempt("stat " + path, lambda: os.stat(path))
    attempt("readlink /proc/1/exe", lambda: os.readlink("/proc/1/exe"))
    for path in ("/", "/proc"):
        try:
            extra = set(os.listdir(path)) - {"usr", "lib", "lib64", "lib32", "etc", "dev",
                                              "proc", "tmp", "root", "self", "thread-self"}
            if path == "/proc":
                extra = {e for e in extra if not e.isdigit()}
            if extra:
                bad.append("listdir %%s: %%s" %% (path, sorted(extra)[:5]))
        except OSError:
            pass
    def unix(addr):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(addr)
        s.sendall(b"pwned")
    attempt("unix socket", lambda: unix(CANARY + "/sock"))
    attempt("abstract socket", lambda: unix("\\0" + %r))
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    ifd = libc.inotify_init1(0)
    if ifd >= 0 and libc.inotify_add_watch(ifd, CANARY.encode(), 0xfff) >= 0:
        bad.append("inotify " + CANARY)
    for name in os.environ:
        if name not in ("PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS"):
            bad.append("env " + name)
    print("contained" if not bad else "breached: " + "; ".join(bad))
    """ % (CANARY_DIR, ABSTRACT)
attack("probe", PROBE, HOST, "pass", "host files, metadata, sockets, /proc and the environment are out of reach")
attack("probe", """
    import os
    cwd = os.getcwd()
    if os.listdir(cwd):
        print("breached: the work dir is not empty")
    elif set(os.listdir("/tmp")) - {os.path.basename(cwd)}:
        print("breached: /tmp holds %s" % sorted(os.listdir("/tmp")))
    else:
        print("contained")
    """, HOST, "pass", "the work dir starts empty (no host /tmp)")

# ------------------------------------------------------- answer learning --
# Four tests, each a secret digit: a program that survives test j knows its
# digit for test j was right. With any channel that outlives a program the
# attempts below would find the answer within 40 tries; without, never.
problem("learn", [("0\n", "7\n"), ("1\n", "2\n"), ("2\n", "9\n"), ("3\n", "4\n")])
LEARNER = """
    import os, ctypes, socket, time
    j = int(input())
    known, tried = {}, {}
    libc = ctypes.CDLL(None, use_errno=True)
    STORES = []
    def load(text):
        for item in text.split(";"):
            if item.count(":") == 2:
                kind, k, v = item.split(":")
                (known if kind == "k" else tried).setdefault(int(k), set()).add(int(v))
    # Channels that could outlive this process (each tried, all read).
    paths = ["/tmp/.learn", os.path.expanduser("~/.learn"), "/dev/shm/.learn",
             %r + "/learn"]
    for p in paths:
        try:
            load(open(p).read())
        except OSError:
            pass
    for target in (os.__file__, "/tmp", "/usr/lib", %r):
        try:
            load(os.getxattr(target, "user.learn").decode())
        except OSError:
            pass
        try:
            st = os.stat(target)
            if st.st_mtime_ns %% 1000 == 999:
                load("k:%%d:%%d" %% (st.st_mtime_ns // 1000 %% 10, st.st_mtime_ns // 10000 %% 10))
        except OSError:
            pass
    shm = libc.shmget(0x6c6561, 4096, 0o1666)
    if shm >= 0:
        libc.shmat.restype = ctypes.c_void_p
        addr = libc.shmat(shm, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            load(ctypes.string_at(addr, 4096).split(b"\\0")[0].decode(errors="ignore"))
    def save(item):
        for p in paths:
            try:
                open(p, "a").write(item + ";")
            except OSError:
                pass
        for target in (os.__file__, "/tmp", "/usr/lib", %r):
            try:
                old = os.getxattr(target, "user.learn")
            except OSError:
                old = b""
            try:
                os.setxattr(target, "user.learn", old + (item + ";").encode())
            except OSError:
                pass
        if shm >= 0 and addr not in (None, ctypes.c_void_p(-1).value):
            data = ctypes.string_at(addr, 4096).split(b"\\0")[0] + (item + ";").encode()
            ctypes.memmove(addr, data + b"\\0", min(len(data) + 1, 4096))
    # Surviving into test j proves the latest guess for test j-1 was right
    # (guesses rise: the latest is the largest).
    if j > 0 and tried.get(j - 1):
        save("k:%%d:%%d" %% (j - 1, max(tried[j - 1])))
    if j in known:
        print(min(known[j]))
    else:
        guess = min(set(range(10)) - tried.get(j, set()) or {0})
        save("t:%%d:%%d" %% (j, guess))
        print(guess)
    """ % (CANARY_DIR, CANARY_DIR, CANARY_DIR)
attack("learn", LEARNER, LEARN, "wrong_answer",
       "learns the answer across attempts through any channel that persists",
       repeat=40)

# ------------------------------------------------------------------ limits --
problem("fresh", [("1\n", "fresh\n"), ("2\n", "fresh\n"), ("3\n", "fresh\n")])
attack("fresh", """
    import builtins, os, sys
    stale = getattr(builtins, "_mcj_seen", False) or "mcj" in os.environ \\
        or os.path.exists("/tmp/state") or os.path.exists("state") \\
        or "mcj_mod" in sys.modules
    builtins._mcj_seen = True
    os.environ["mcj"] = "1"
    sys.modules["mcj_mod"] = sys
    for p in ("/tmp/state", "state"):
        try:
            open(p, "w").write("x")
        except OSError:
            pass
    print("stale" if stale else "fresh")
    """, LIMITS, "pass", "no module, environment or file state carries from one test to the next")
problem("trace", [("encode\n", "fresh\n"), ("decode\n", "fresh\n")] * 2)
TRACE = """
    import os, tempfile, time
    SECRET = 7
    root = os.stat(".")
    if input().strip() == "encode":  # Leave traces that outlive no file.
        time.sleep(0.02)  # A later clock tick than the work dir's creation.
        for i in range(SECRET):
            try:
                %s
            except OSError:
                pass
        print("fresh")
    else:  # A fresh work dir: the next inode follows the root's, never read.
        fd = os.open("probe", os.O_CREAT | os.O_WRONLY, 0o600)
        ino = os.fstat(fd).st_ino
        os.close(fd)
        leaked = (SECRET <= ino - root.st_ino - 1 <= SECRET + 2
                  or root.st_atime_ns > root.st_ctime_ns)
        print("leaked" if leaked else "fresh")
    """
for how, step in (
    ("unnamed inodes (O_TMPFILE)", "os.close(os.open('.', os.O_TMPFILE | os.O_RDWR, 0o600))"),
    ("files made and removed at once",
     "os.close(os.open('f', os.O_CREAT | os.O_WRONLY)); os.unlink('f')"),
    ("a temporary file", "tempfile.TemporaryFile().close()"),
    ("reading the directory (atime)", "os.listdir('.')")):
  attack("trace", TRACE % step, LIMITS, "pass",
         f"a test leaves no trace in the work dir for the next: {how}")
problem("markers", [("MARK-A-91c2\n", "clean\n"), ("MARK-B-4d7e\n", "clean\n"),
                    ("MARK-C-e05f\n", "clean\n")])
attack("markers", """
    import re
    mine = input().strip()
    seen = set()
    import gc
    for o in gc.get_objects():
        for v in (o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()):
            if isinstance(v, (str, bytes)):
                seen.update(m if isinstance(m, str) else m.decode() for m in re.findall(
                    "MARK-[A-C]-[0-9a-f]{4}" if isinstance(v, str) else rb"MARK-[A-C]-[0-9a-f]{4}", v))
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms:
                continue
            lo, hi = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, OverflowError, ValueError):
                continue
            seen.update(m.decode() for m in re.findall(rb"MARK-[A-C]-[0-9a-f]{4}", data))
    print("clean" if seen <= {mine} else "leak " + " ".join(sorted(seen - {mine})))
    """, LIMITS, "pass", "a test's process holds no other test's input")
attack("probe", """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    bad = []
    if libc.shmget(0, 512 << 20, 0o1600) >= 0:
        bad.append("SysV shmget")
    if libc.semget(0, 1, 0o1600) >= 0:
        bad.append("SysV semget")
    if libc.msgget(0, 0o1600) >= 0:
        bad.append("SysV msgget")
    try:
        open("/dev/shm/x", "w")
        bad.append("POSIX shm")
    except OSError:
        pass
    import os
    try:
        os.memfd_create("x")
        bad.append("memfd_create")
    except OSError:
        pass
    print("contained" if not bad else "breached: " + ", ".join(bad))
    """, LIMITS, "pass", "no memory outside the address-space limit (SysV/POSIX shm, memfd)")
attack("probe", """
    import os, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    total = 0
    chunk = b"x" * (1 << 20)
    for name in ("/tmp/a", "b", "/tmp/c"):
        try:
            with open(name, "wb") as f:
                while total < (1 << 30):
                    f.write(chunk)
                    f.flush()
                    total += len(chunk)
        except OSError:
            pass
    print("contained" if total <= 128 << 20 else "breached: wrote %d MiB" % (total >> 20))
    """, LIMITS, "pass", "the work dir is a size-limited tmpfs")
attack("probe", """
    import os
    fds = []
    try:
        while len(fds) < 100000:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    print("contained" if len(fds) < 1000 else "breached: %d descriptors" % len(fds))
    """, LIMITS, "pass", "descriptors are limited")
attack("add", None, LIMITS, "compile_error", "20 MB of source: never compiled",
       code_parts=[["x = [", 1], ["1,", 10_000_000], ["]\\nprint(3)\\n", 1]])
attack("add", "x = [" + "(" * 200 + ")" * 200 + "]\nprint(3)", LIMITS, "compile_error",
       "nesting too deep for the compiler")

# ---------------------------------------------------------- verdict faking --
attack("add", """
    import os, sys
    a, b = map(int, input().split())
    print(a + b)
    real = os._exit
    os._exit = lambda code: real(0)
    sys.exit(1)
    """, FAKE, "runtime_error", "patches os._exit so that sys.exit(1) would exit 0")
attack("add", """
    import os, signal
    a, b = map(int, input().split())
    print(a + b, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """, FAKE, "runtime_error", "prints the answer, then SIGKILLs itself")
attack("add", """
    import os
    frame = b'{"t":"test","job":1,"i":0,"rc":0,"sig":null,"cpu":0,"wall":0}'
    import struct
    msg = struct.pack("<IQ", len(frame), 0) + frame
    for fd in range(0, 256):
        try:
            os.write(fd, msg)
        except OSError:
            pass
    for pid in ("1", str(os.getppid())):
        for fd in range(0, 64):
            try:
                with open("/proc/%s/fd/%d" % (pid, fd), "wb") as f:
                    f.write(msg)
            except OSError:
                pass
    print(0)
    """, FAKE, "wrong_answer", "forged frames on every descriptor and the parent's /proc fds")
attack("add", """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    for req in (16, 0x4206):  # PTRACE_ATTACH, PTRACE_SEIZE
        libc.ptrace(req, 1, 0, 0)
    for sig in (9, 19):
        try:
            os.kill(1, sig)
        except OSError:
            pass
    print(0)
    """, FAKE, "wrong_answer", "ptraces, kills and stops its supervisor")

# ---------------------------------------------------------- batch survival --
attack("add", "print('\\ud800')", BATCH, "runtime_error",
       "a lone surrogate in the program")
problem("surrogate_in", [("\ud800x\n", "\ud800x\n")])
attack("surrogate_in", "import sys\nsys.stdout.write(sys.stdin.read())", BATCH, "pass",
       "a lone surrogate in a test input is passed through byte for byte")
problem("surrogate_out", [("x\n", "\udc80\n")])
attack("surrogate_out", "print('x')", BATCH, "wrong_answer",
       "a lone surrogate in an expected output")
attack("add", """
    import os
    for _ in range(3000):
        os.mkdir("d")
        os.chdir("d")
    a, b = map(int, input().split())
    print(a + b)
    """, BATCH, "pass", "leaves a 3000-deep directory chain")
attack("add", "import os\nos.abort()", BATCH, "runtime_error", "aborts")
attack("add", "import ctypes\nctypes.string_at(0)", BATCH, "runtime_error", "segfaults")

# -------------------------------------------------------------- comparator --
problem("digits", [("1 2\n", "3 12\n")])
for out, note in (("３ １２", "fullwidth digits"), ("٣ ١٢", "Arabic-Indic digits"),
                  ("3\u200312", "EM SPACE as a separator"),
                  ("3\u300012", "IDEOGRAPHIC SPACE as a separator"),
                  ("3\x0b12", "vertical tab as a separator"),
                  ("3\x1c12", "file separator as a separator")):
  attack("digits", f"print({out!r})", COMPARE, "wrong_answer", note)
attack("digits", "print(3, 12)", COMPARE, "pass", "the right answer")
problem("half", [("\n", "0.5\n")],
        question="Print one half. Your answer is accepted if its absolute or relative "
                 "error is at most 10^{-6}.")
attack("half", "print('０.５')", COMPARE, "wrong_answer", "fullwidth digits in float mode")
attack("half", "print('0.5000001')", COMPARE, "pass", "within the stated tolerance")
problem("constraint_tol", [("\n", "0.5\n")],
        question="Print x/2 for x = 1. Constraints: 10^{-1} <= x <= 1. Your answer is "
                 "considered correct if its absolute or relative error does not exceed "
                 "10^{-9}.")
attack("constraint_tol", "print(0.55)", COMPARE, "wrong_answer",
       "10^{-1} in the constraints is not the tolerance")
attack("constraint_tol", "print('0.5000000001')", COMPARE, "pass", "within 10^{-9}")
problem("anycase_phrase", [("4\n", "YES\n"), ("7\n", "NO\n")],
        question="In any case, print YES if N is even, otherwise NO.")
attack("anycase_phrase", "print('yes' if int(input()) % 2 == 0 else 'no')", COMPARE,
       "wrong_answer", "'in any case' as an English phrase does not allow any case")
problem("literal_ws", [("\n", "5\n")])
attack("literal_ws", 's = """x\ny"""\nprint(len(s))', COMPARE, "wrong_answer",
       "wrong twin (judged first)")
attack("literal_ws", 's = """x  \ny"""\nprint(len(s))', COMPARE, "pass",
       "differs from its wrong twin only by whitespace inside a literal")

# ------------------------------------------------- correct programs pass --
attack("add", """
    import sys
    sys.stderr.write("debug " * 100000)
    a, b = map(int, input().split())
    print(a + b)
    """, CORRECT, "pass", "600 KB of stderr is truncated, never fatal")
problem("top_two", [("[3, 1, 4, 1, 5]", "[5, 4]"), ("[2, 2]", "[2, 2]")],
        fn_name="topTwo",
        starter_code="class Solution:\n    def topTwo(self, nums: List[int]) -> List[int]:\n")
attack("top_two", """
    class Solution:
        def topTwo(self, nums: List[int]) -> List[int]:
            q: Deque[int] = deque(sorted(Counter(nums).elements()))
            best = nlargest(2, q)
            return list(best) if best else [inf]
    """, CORRECT, "pass", "LeetCode's implicit imports (List, Deque, deque, Counter, nlargest, inf)")

# ----------------------------------------------------------------- thinking --
DRAFT = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
attack("add", None, THINK, "no_code", "prompt opened <think>, truncated mid-reasoning "
       "with a complete draft", completion=f"Let me try:\n{DRAFT}\nHmm, but wait",
       prompt_opens_think=True)
attack("add", None, THINK, "pass", "prompt opened <think>; the answer after </think>",
       completion="draft:\n```python\nprint(0)\n```\n</think>\nFinal:\n" + DRAFT,
       prompt_opens_think=True)
attack("add", None, THINK, "wrong_answer", "only the code after the last </think> counts",
       completion=DRAFT + "\n</think>\n```python\nprint(0)\n```", prompt_opens_think=True)


if __name__ == "__main__":
  _write("attack_problems.jsonl", PROBLEMS)
  _write("attacks.jsonl", SAMPLES)
  print(f"{len(PROBLEMS)} problems, {len(SAMPLES)} attacks")
