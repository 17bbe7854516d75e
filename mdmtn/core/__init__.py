"""Layer 1, core: the run configuration and its presets, typed fields, phase timing and the paper's facts."""

from mdmtn.core.config import (
    DATASETS,
    PRESETS,
    ConfigError,
    RunConfig,
    env_flag,
    make_config,
    profile_overrides,
    validate_k,
)
from mdmtn.core.paper import paper_preference_vectors
from mdmtn.core.timing import PhaseTimer

__all__ = [
    "RunConfig",
    "make_config",
    "ConfigError",
    "validate_k",
    "env_flag",
    "profile_overrides",
    "DATASETS",
    "PRESETS",
    "PhaseTimer",
    "paper_preference_vectors",
]
