"""How round plans reach hospitals and their updates come back: the transport seam.

A transport knows the federation's hospitals by name and runs one exchange per round attempt:
every plan out, every update (or failure) back by a deadline. :class:`InProcess` calls hospitals
that live in this process (``fhto run``); the Flower transport (:mod:`fhto_native.fl.flower`)
sends messages to SuperNodes. The server does not know which one it talks to.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, List, Mapping, Optional, Protocol, Sequence, Tuple

from ..errors import ParameterError
from .protocol import HospitalUpdate, RoundPlan

__all__ = ["Transport", "InProcess", "Hospital"]

#: A hospital in process: takes its plan, returns its update.
Hospital = Callable[[RoundPlan], HospitalUpdate]


class Transport(Protocol):
    """What the server needs from a transport."""

    @property
    def hospitals(self) -> Sequence[str]:
        """The federation's hospitals, in a fixed order (it numbers their training seeds)."""

    def exchange(
        self, plans: Mapping[str, RoundPlan], timeout: Optional[float]
    ) -> Tuple[List[HospitalUpdate], List[str]]:
        """Send every plan; return the updates that came back by the deadline and one line per
        hospital that failed (``"name: why"``). A failure is data, never an exception."""


class InProcess:
    """Hospitals that are callables in this process.

    With a ``timeout`` they run concurrently and :meth:`exchange` returns by the deadline: a
    hospital still working then is recorded as timed out and its late answer is dropped (its
    thread is left to finish on its own; it is never waited for).
    """

    def __init__(self, hospitals: Mapping[str, Hospital]) -> None:
        if not hospitals:
            raise ParameterError("a federation needs at least one hospital")
        self._hospitals = dict(hospitals)

    @property
    def hospitals(self) -> List[str]:
        return list(self._hospitals)

    def exchange(
        self, plans: Mapping[str, RoundPlan], timeout: Optional[float]
    ) -> Tuple[List[HospitalUpdate], List[str]]:
        updates, failures = [], []
        if timeout is None:
            for name, plan in plans.items():
                try:
                    updates.append(self._hospitals[name](plan))
                except Exception as exc:  # noqa: BLE001 - a hospital's failure is recorded, whatever it is
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            return updates, failures
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ParameterError(f"timeout must be a positive number of seconds; got {timeout}")
        # Not a `with` block: leaving it would wait for a hung hospital, past the deadline.
        pool = ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="fhto-hospital")
        try:
            futures = {name: pool.submit(self._hospitals[name], plan) for name, plan in plans.items()}
            deadline = time.monotonic() + timeout
            for name, future in futures.items():
                try:
                    updates.append(future.result(timeout=max(deadline - time.monotonic(), 0.0)))
                except FutureTimeout:
                    failures.append(f"{name}: timed out after {timeout:g} s")
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return updates, failures
