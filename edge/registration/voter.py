"""The voting-backend interface and the choice of backend for a device name."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from edge.registration.edges import EdgePoints
from edge.registration.errors import DeviceUnavailable, RegistrationError
from edge.registration.rtable import Hypotheses, RTable

log = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda", "auto")


class Voter(Protocol):
    """Votes into an accumulator (n_hyp, h, w) whose cell (0, 0) is level pixel ``origin`` and
    returns each slice's peak votes and flat index (lowest index on ties), with the
    accumulator itself when ``keep`` (the CUDA backend always returns its device array).
    ``ring``: skip R-table entries that cannot reach the accumulator (same votes, less work;
    worth it for the small windows of the local votes)."""

    name: str

    def vote(
        self,
        points: EdgePoints,
        hyp: Hypotheses,
        table: RTable,
        origin: tuple[int, int],
        shape: tuple[int, int],
        keep: bool = False,
        ring: bool = False,
    ) -> tuple[Any, np.ndarray, np.ndarray]: ...

    def accumulator(self, acc: Any) -> np.ndarray: ...


def make_voter(device: str) -> Voter:
    """``cpu``, ``cuda`` (DeviceUnavailable if Numba has no CUDA GPU) or ``auto`` (CUDA when
    available, else CPU). numba.cuda is imported only here, only when asked for."""
    if device not in DEVICES:
        raise RegistrationError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        from edge.registration.ght_cpu import CpuVoter

        return CpuVoter()
    try:
        from edge.registration.ght_cuda import CudaVoter

        return CudaVoter()
    except (DeviceUnavailable, ImportError, OSError) as exc:
        if device == "cuda":
            if isinstance(exc, DeviceUnavailable):
                raise
            raise DeviceUnavailable(f"device='cuda': numba.cuda unusable ({exc})") from exc
        log.info("device auto: no CUDA (%s), voting on the CPU", exc)
        from edge.registration.ght_cpu import CpuVoter

        return CpuVoter()
