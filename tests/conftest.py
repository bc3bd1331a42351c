"""Shared pytest configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (nightly / before a release); the
default ``ci`` profile keeps the whole property suite to well under a minute on two cores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("ci", max_examples=40, **_COMMON)
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
