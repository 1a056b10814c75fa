"""Device parametrisation: `from devices import DEVICES` (tests/ is on sys.path via pyproject)."""

import pytest


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


CUDA_AVAILABLE = _cuda_available()

# Use as @pytest.mark.parametrize("device", DEVICES): CUDA runs automatically where a GPU exists.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")),
]
