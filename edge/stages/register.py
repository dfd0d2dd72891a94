"""Stage 1: from a frame to what the model takes. The frame is checked against the engine's
input (ImageError), put on the full 16-bit scale (edge.bit_depth), registered to the template
when the engine registers, and preprocessed into the model input (or left for the GPU crop)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.bit_depth import refuse_narrow_file, stored_bits, to_full_scale
from edge.manifest import InputSpec
from edge.preprocess import check_image, to_model_input

if TYPE_CHECKING:  # registration (Numba) is imported only by engines that register
    from edge.registration import Registrar, Registration


@dataclass(frozen=True)
class Registered:
    """A frame after registration: ready to score (its model input on the host, or its frame
    and pose for the GPU crop), or not registered (`ready` False)."""

    image: np.ndarray  # the frame on the full scale
    model_input: np.ndarray | None  # (C, H, W) float32; None on the GPU path or not registered
    registration: Registration | None  # None for an engine that does not register
    register_ms: float
    preprocess_ms: float
    ready: bool


def register(
    image: np.ndarray,
    source: str,
    bit_depth: int | None,
    spec: InputSpec,
    registrar: Registrar | None,
    on_device: bool,
) -> Registered:
    """One frame (H, W[, C]) uint8/uint16. `bit_depth`: its significant bits when its source
    knows them (a camera), None for image files (read at the engine's depth). `on_device`: the
    model input is cut on the GPU later (not here). ImageError for a frame the engine cannot
    take."""
    check_image(image, spec, source)
    refuse_narrow_file(image, bit_depth, spec.bit_depth, source)
    image = to_full_scale(image, stored_bits(image, bit_depth, spec.bit_depth), source)
    t0 = time.perf_counter()
    registration = registrar.register(image, warp=not on_device) if registrar else None
    t1 = time.perf_counter()
    register_ms = (t1 - t0) * 1e3
    if registration is not None and not registration.accepted:
        return Registered(image, None, registration, register_ms, 0.0, ready=False)
    if on_device:  # cut and preprocessed on the GPU by the model stage
        return Registered(image, None, registration, register_ms, 0.0, ready=True)
    crop = image if registration is None else registration.aligned
    assert crop is not None  # register() warps unless told not to
    model_input = to_model_input(crop, spec)
    t2 = time.perf_counter()
    return Registered(image, model_input, registration, register_ms, (t2 - t1) * 1e3, True)
