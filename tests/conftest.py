"""Kernel tests run on CUDA when there is a GPU, else on CPU under TRITON_INTERPRET=1."""

import json
import os
import subprocess
import sys
import tempfile

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tether.functional import ops  # noqa: E402
from tether.functional.core import uses_kernels  # noqa: E402
from tether.kernels.launch import Launcher  # noqa: E402

# The same examples every run: a test command that passes once passes again, and a failure
# found by exploring is not shrunk (minutes) inside someone else's test run.
settings.register_profile("derandomized", derandomize=True)
settings.load_profile("derandomized")

# On a GPU every cached launch also checks that its key stands for one specialization.
Launcher.check_keys = True

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def device() -> torch.device:
    """Where kernels run: the GPU, or the CPU under the interpreter."""
    if not uses_kernels(torch.empty(0, device=DEVICE)):
        pytest.skip("no GPU and TRITON_INTERPRET is off: kernels cannot run")
    return DEVICE


@pytest.fixture(params=["reference", "kernels"])
def path(request, monkeypatch) -> torch.device:
    """Each path of the Functions in turn: the eager reference on the CPU (float32 included:
    ``uses_kernels`` patched off), then the kernels (as ``device``). Returns the device."""
    if request.param == "reference":
        monkeypatch.setattr(ops, "uses_kernels", lambda x: False)
        return torch.device("cpu")
    return request.getfixturevalue("device")


def compile_env() -> dict[str, str]:
    """The environment of an ahead-of-time compile: no interpreter (real JITFunctions)."""
    return {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


@pytest.fixture(scope="session", autouse=True)
def _configs_compiling(request):
    """When a selected test needs them, compile the runtime's configs for sm_90
    (``python -m tether.kernels.aot --configs``) on one core from the start of the session,
    while the interpreter tests run on the other; ``compiled_configs`` collects the result."""
    if not any("compiled_configs" in item.fixturenames for item in request.session.items):
        yield None
        return
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [sys.executable, "-m", "tether.kernels.aot", "--configs", "--jobs", "1"]
        process = subprocess.Popen(command, env=compile_env(), stdout=out, stderr=err)
        yield process, out, err
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def compiled_configs(_configs_compiling) -> dict[str, str]:
    """``{variant id: "ok" | error}`` of the background compile."""
    process, out, err = _configs_compiling
    process.wait()
    out.seek(0)
    err.seek(0)
    assert process.returncode == 0, err.read().decode()[-2000:]
    return json.loads(out.read())
