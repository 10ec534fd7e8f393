"""Settings every test module shares."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests judge correctness, never speed: on a busy two-core machine one example can take
# longer than Hypothesis' default deadline (200 ms) or its input-generation health check allows.
# Speed is measured by `make bench`.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")
