"""Kernel tests run on CUDA when there is a GPU, else on CPU under TRITON_INTERPRET=1."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import zlib

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


@pytest.fixture(autouse=True)
def _seeded(request) -> None:
    """torch's generators (CPU and every GPU) seeded from the test's id: each test draws the
    same data whatever ran before it in its worker (an unseeded draw once gave a test no
    spikes on the GPU machine, whose workers run the tests in another order than CI's)."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))


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


# Ahead-of-time compiles for sm_90 that run in the background (``python -m tether.kernels.aot
# ARGS --jobs 1``, one process and core each) from the start of the session, by the fixture
# that collects each: every switch variant, the configs of ``aot.config_variants``, the layouts.
BACKGROUND = {
    "compiled_switches": (),
    "compiled_configs": ("--configs",),
    "compiled_layouts": ("--layouts",),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that wait for a background compile run last, so that the interpreter tests
    run meanwhile."""
    items.sort(key=lambda item: any(name in BACKGROUND for name in item.fixturenames))


@pytest.fixture(scope="session", autouse=True)
def _compiling(request):
    """Start the background compiles that a selected test needs; ``{fixture: (process, out,
    err)}``. Not on a GPU machine (there pytest-xdist's every worker would start them): its
    fixtures compile when first used."""
    needed = {n for item in request.session.items for n in item.fixturenames if n in BACKGROUND}
    if DEVICE.type == "cuda":
        needed = set()
    with contextlib.ExitStack() as files:
        running = {}
        for name in sorted(needed):
            out, err = (files.enter_context(tempfile.TemporaryFile()) for _ in range(2))
            command = [sys.executable, "-m", "tether.kernels.aot", *BACKGROUND[name], "--jobs", "1"]
            running[name] = (
                subprocess.Popen(command, env=compile_env(), stdout=out, stderr=err),
                out,
                err,
            )
        yield running
        for process, _, _ in running.values():
            process.kill()
            process.wait()


def _compiled(running: dict, name: str) -> dict:
    """What the background compile ``name`` printed (JSON); compiled now if not running."""
    if name not in running:
        command = [sys.executable, "-m", "tether.kernels.aot", *BACKGROUND[name]]
        done = subprocess.run(command, env=compile_env(), capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return json.loads(done.stdout)
    process, out, err = running[name]
    process.wait()
    out.seek(0)
    err.seek(0)
    assert process.returncode == 0, err.read().decode()[-2000:]
    return json.loads(out.read())


@pytest.fixture(scope="session")
def compiled_switches(_compiling) -> dict[str, str]:
    """Every switch variant of the kernels (``aot.switch_variants``)."""
    return _compiled(_compiling, "compiled_switches")


@pytest.fixture(scope="session")
def compiled_configs(_compiling) -> dict[str, str]:
    """The configs the runtime can pick outside the tuning space, and a sample of the space
    (``aot.config_variants``)."""
    return _compiled(_compiling, "compiled_configs")


@pytest.fixture(scope="session")
def compiled_layouts(_compiling) -> dict[str, object]:
    """The tiles' layouts and shared memory (``aot.tile_layouts``)."""
    return _compiled(_compiling, "compiled_layouts")
