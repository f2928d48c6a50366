"""Launch configs: the tunable space, the untuned default and the shipped winners table."""

from tether.tuning.space import KernelConfig, config_space, default_config
from tether.tuning.table import select_config

__all__ = ["KernelConfig", "config_space", "default_config", "select_config"]
