"""Kernel tests run on CUDA when there is a GPU, else on CPU under TRITON_INTERPRET=1."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from tether.functional.core import uses_kernels  # noqa: E402
from tether.kernels.launch import Launcher  # noqa: E402

# On a GPU every cached launch also checks that its key stands for one specialization.
Launcher.check_keys = True

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def device() -> torch.device:
    """Where kernels run: the GPU, or the CPU under the interpreter."""
    if not uses_kernels(torch.empty(0, device=DEVICE)):
        pytest.skip("no GPU and TRITON_INTERPRET is off: kernels cannot run")
    return DEVICE
