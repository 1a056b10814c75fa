"""Shared test settings: hypothesis profiles and device parametrisation."""

import os

import pytest
from hypothesis import HealthCheck, settings

# CI machines have 2 slow cores: no per-example deadline, moderate example counts.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")
    ),
]
