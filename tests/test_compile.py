"""Every kernel variant compiles ahead of time for sm_90 (the interpreter is more lenient).

Compilation runs in a subprocess without TRITON_INTERPRET (it needs real JITFunctions).
"""

import json
import os
import subprocess
import sys

import pytest

from tether.kernels import aot


def compile_all(*args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-m", "tether.kernels.aot", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def compiled() -> dict[str, str]:
    return compile_all()


@pytest.mark.parametrize("name", [v[0] for v in aot.switch_variants()])
def test_variant_compiles_for_sm90(compiled, name):
    assert compiled[name] == "ok"
