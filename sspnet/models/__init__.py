"""SSPNet models in plain PyTorch: `build_model(preset, **overrides)`.

Presets: sspnet/models/presets/*.yaml (see `sspnet info --presets`).
"""

from sspnet.models.presets import build_model, describe_model, list_presets, load_preset

__all__ = ["build_model", "describe_model", "list_presets", "load_preset"]
