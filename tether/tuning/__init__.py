"""Launch configs: the tunable space, the untuned default, the shipped winners table and
``TETHER_AUTOTUNE=1``'s tuning through Triton's autotuner (``autotune``). The offline sweep
that writes the table through the same autotuner is on the benchmark side
(``tether.benchmark.sweep``)."""

from tether.tuning.space import KernelConfig, config_space, default_config
from tether.tuning.table import select_config

__all__ = ["KernelConfig", "config_space", "default_config", "select_config"]
