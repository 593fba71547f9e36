"""PyTorch on the CPU as a tuned user runs it: with tcmalloc preloaded (Debian libtcmalloc-minimal4).

With glibc's malloc PyTorch's large temporaries are returned to the kernel and faulted in again on every
step, which makes it several times slower on some machines and would flatter grcnn. Import this module
before torch: it re-executes the script once with LD_PRELOAD set. grcnn's own binaries are started
without it (ours_env()), as users run them.
"""
import os
import sys

LIBRARY = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
_MARK = "GRCNN_BENCH_TCMALLOC"


def active():
    return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def ours_env():
    """The environment for grcnn's binaries: the caller's, without the preloaded tcmalloc."""
    env = dict(os.environ)
    kept = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "tcmalloc" not in p]
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    else:
        env.pop("LD_PRELOAD", None)
    return env


def ensure():
    if active():
        return
    if not os.path.exists(LIBRARY):
        sys.exit(f"tcmalloc_preload: {LIBRARY} is missing (scripts/install-deps.sh installs libtcmalloc-minimal4); "
                 "PyTorch without it would run slower than a tuned user's")
    if os.environ.get(_MARK):
        sys.exit("tcmalloc_preload: LD_PRELOAD did not take effect")
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(p for p in [LIBRARY, env.get("LD_PRELOAD", "")] if p)
    env[_MARK] = "1"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


ensure()
