"""Shared helpers of the end-to-end tool checks (check_train.py, check_recipes.py): run a tool and
require its exit status, and report a named check."""
import subprocess
import sys


def runner(exe, name="grcnn-train"):
    """run(args, expect=0) -> the tool's stdout + stderr; exits the check with both when the status differs."""
    def run(args, expect=0):
        p = subprocess.run([exe] + args, capture_output=True, text=True)
        if p.returncode != expect:
            sys.exit(f"FAIL: {name} {' '.join(args)} exited {p.returncode} (expected {expect})\n{p.stdout}\n{p.stderr}")
        return p.stdout + p.stderr
    return run


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)
