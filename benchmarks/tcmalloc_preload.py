"""PyTorch on the CPU as a tuned user runs it: with tcmalloc preloaded (Debian libtcmalloc-minimal4).

With glibc's malloc PyTorch's large temporaries are returned to the kernel and faulted in again on every
step, which makes it several times slower on some machines and would flatter grcnn. Import this module
before torch: it re-executes the script once with LD_PRELOAD set. grcnn's own binaries are started
without it (ours_env()), as users run them. `--torch-malloc glibc` on the script's command line keeps
PyTorch on glibc's malloc (to see the difference); describe() names what each side used and the CPU.
"""
import os
import platform
import sys

OPT_OUT = "--torch-malloc"  # the scripts' option: tcmalloc (default) or glibc

LIBRARY = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
_MARK = "GRCNN_BENCH_TCMALLOC"


def active():
    return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def wanted():
    """False when the command line asks for glibc's malloc (--torch-malloc glibc or --torch-malloc=glibc)."""
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == f"{OPT_OUT}=glibc" or (a == OPT_OUT and i + 1 < len(argv) and argv[i + 1] == "glibc"):
            return False
    return True


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe():
    """One phrase for a table's header: each side's allocator and the CPU."""
    torch_side = "tcmalloc preloaded" if active() else "glibc malloc (--torch-malloc glibc: slower on some machines)"
    return f"PyTorch: {torch_side}; grcnn: glibc malloc under its own tensor pool; CPU: {cpu_model()}"


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
    if active() or not wanted():
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
