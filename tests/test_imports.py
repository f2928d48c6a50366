"""The runtime stands apart from the benchmark side: ``import tether`` needs torch and Triton."""

import subprocess
import sys

BENCH_ONLY = ("pandas", "matplotlib", "typer", "rich", "tqdm", "tether.benchmark")
# What torch and Triton import themselves is not tether's (torch.hub imports tqdm when it is
# installed): the test counts the modules that importing the runtime adds.
CODE = f"""
import sys, torch, triton, triton.testing
before = set(sys.modules)
import tether, tether.tuning.autotune, tether.kernels.aot
added = set(sys.modules) - before
print(sorted(p for p in {BENCH_ONLY!r} if any(m == p or m.startswith(p + ".") for m in added)))
"""


def test_import_tether_leaves_the_benchmark_side_out():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"importing the runtime imported {done.stdout.strip()}"
