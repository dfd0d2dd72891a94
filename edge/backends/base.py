"""The interface every inference backend honours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ModelOutputs:
    reconstruction: np.ndarray  # (N, C, H, W) float32
    anomaly_map: np.ndarray  # (N, 1, H, W) float32
    score: np.ndarray  # (N,) float32


class InferenceBackend(Protocol):
    name: str

    def run(self, batch: np.ndarray) -> ModelOutputs:
        """Score a float32 (N, C, H, W) batch in [0, 1]."""
        ...
