"""Layer 1, core: the run configuration and its presets, typed fields, phase timing and the paper's facts."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "RunConfig": "config",
    "make_config": "config",
    "ConfigError": "config",
    "validate_k": "config",
    "env_flag": "config",
    "profile_overrides": "config",
    "DATASETS": "config",
    "PRESETS": "config",
    "PhaseTimer": "timing",
    "paper_preference_vectors": "paper",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
