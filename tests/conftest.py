"""Shared test settings: hypothesis profiles."""

import os

from hypothesis import HealthCheck, settings

# CI machines have 2 slow cores: no per-example deadline, moderate example counts.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
