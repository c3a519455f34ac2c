"""FHTO on Flower (``flwr`` 1.42, the Message API): the transport and key-holder seams over a
Flower Grid, and the launcher of a local deployment over real processes.

Flower is an optional dependency (``pip install 'fhto-native[flower]'``); importing this package
without it raises a :class:`~fhto_native.errors.ParameterError` that says so. The apps themselves
(what a hospital does with its rows) live in :mod:`fhto_native.study.flower_app`.
"""
from __future__ import annotations

import os

from ...errors import ParameterError

#: Every Flower process FHTO starts runs with these: hospitals' machines are offline and private,
#: so Flower's telemetry and update check are off.
FLOWER_ENVIRONMENT = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
os.environ.update(FLOWER_ENVIRONMENT)

try:
    import flwr  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ParameterError(
        "FHTO's Flower deployment needs Flower: pip install 'fhto-native[flower]' (flwr 1.42)"
    ) from exc
