"""Cutting the registered part out of the frame on the GPU, straight into the engine's input.

The host path is ``edge.registration.warp.warp_to_template`` (OpenCV's bilinear ``warpAffine``,
rounded to the frame's pixel type) then ``edge.preprocess.to_model_input`` (divide by the type's
maximum, ``INTER_AREA`` resize to the model's size, channels first). Here the same three steps
run as CUDA kernels on one stream, writing row ``i`` of the inference backend's own input buffer
(``DeviceInput``), so the crop never exists on the host:

1. ``_warp``: each output pixel samples the frame at ``template_to_frame(pose) @ (x, y, 1)``
   with float32 bilinear weights, pixels outside the frame count as 0 (OpenCV's
   ``BORDER_CONSTANT``), the value is rounded half-to-even to the frame's integer type and
   divided by its maximum. For 8-bit frames this is OpenCV >= 4.11's own arithmetic (the test
   compares pixel for pixel); OpenCV 4.10 and older quantise positions to 1/32 px, so they
   differ by a grey level here and there. 16-bit frames may differ by 1 of 65535.
2. ``_resize_x`` and ``_resize_y`` (only when the template window and the model's input differ
   in size): ``INTER_AREA`` is linear and separable, so its weights are read off OpenCV itself
   (resizing identity images) at start-up, checked against a real resize, and applied as two
   sparse passes. Sums run in another order than OpenCV's: float rounding, ~1e-7.

The frame is uploaded once per part (the camera delivers it to host memory, and registration's
edge extraction and refinement read it there).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numba import cuda as _cuda

from edge.gpu.device import CudaDevice, GpuUnavailable
from edge.manifest import InputSpec
from edge.registration.pose import Pose, template_to_frame

if TYPE_CHECKING:
    from edge.backends.base import DeviceInput

# numba.cuda's intrinsics have no usable static types; treat the module as dynamic. (Still the
# module object itself, which the simulator swaps for its own while a kernel runs.)
cuda: Any = _cuda

_BLOCK = (16, 16)
_MAX = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _warp(frame: Any, m0: Any, m1: Any, m2: Any, m3: Any, m4: Any, m5: Any, top: Any,
          out: Any) -> None:  # fmt: skip
    """out[c, y, x] = round(bilinear(frame[:, :, c] at M @ (x, y, 1))) / top (float32)."""
    x, y = cuda.grid(2)
    channels, height, width = out.shape
    if x >= width or y >= height:
        return
    fh, fw, _ = frame.shape
    fx = np.float32(x)
    fy = np.float32(y)
    sx = m0 * fx + m1 * fy + m2
    sy = m3 * fx + m4 * fy + m5
    x0 = math.floor(sx)
    y0 = math.floor(sy)
    ax = sx - np.float32(x0)
    ay = sy - np.float32(y0)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    inx0 = x0 >= 0 and x0 < fw
    inx1 = x0 + 1 >= 0 and x0 + 1 < fw
    iny0 = y0 >= 0 and y0 < fh
    iny1 = y0 + 1 >= 0 and y0 + 1 < fh
    for c in range(channels):
        v00 = np.float32(frame[y0, x0, c]) if iny0 and inx0 else zero
        v01 = np.float32(frame[y0, x0 + 1, c]) if iny0 and inx1 else zero
        v10 = np.float32(frame[y0 + 1, x0, c]) if iny1 and inx0 else zero
        v11 = np.float32(frame[y0 + 1, x0 + 1, c]) if iny1 and inx1 else zero
        v = (one - ay) * ((one - ax) * v00 + ax * v01) + ay * ((one - ax) * v10 + ax * v11)
        r = np.float32(round(v))
        if r > top:
            r = top
        out[c, y, x] = r / top


def _resize_x(src: Any, weights: Any, lo: Any, hi: Any, out: Any) -> None:
    """out[c, i, x] = sum_j weights[x, j] * src[c, i, j] over j in [lo[x], hi[x])."""
    x, i = cuda.grid(2)
    channels, rows, width = out.shape
    if x >= width or i >= rows:
        return
    for c in range(channels):
        acc = np.float32(0.0)
        for j in range(lo[x], hi[x]):
            acc += weights[x, j] * src[c, i, j]
        out[c, i, x] = acc


def _resize_y(src: Any, weights: Any, lo: Any, hi: Any, out: Any) -> None:
    """out[c, y, x] = sum_i weights[y, i] * src[c, i, x] over i in [lo[y], hi[y])."""
    x, y = cuda.grid(2)
    channels, height, width = out.shape
    if x >= width or y >= height:
        return
    for c in range(channels):
        acc = np.float32(0.0)
        for i in range(lo[y], hi[y]):
            acc += weights[y, i] * src[c, i, x]
        out[c, y, x] = acc


def area_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) float32: OpenCV's INTER_AREA resize along one axis as a matrix,
    read off OpenCV by resizing the identity."""
    eye = np.eye(size_in, dtype=np.float32)
    return np.ascontiguousarray(
        cv2.resize(eye, (size_out, size_in), interpolation=cv2.INTER_AREA).T, dtype=np.float32
    )


def separable_area(size: tuple[int, int], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """(rows weights (H, h), columns weights (W, w)) with ``ry @ img @ rx.T`` equal to
    ``cv2.resize(img, (W, H), INTER_AREA)`` for an (h, w) float32 image; GpuUnavailable when
    OpenCV's resize for these sizes is not that (it mixes methods when one axis shrinks and
    the other grows)."""
    w, h = size
    rx, ry = area_weights(w, spec.width), area_weights(h, spec.height)
    probe = np.random.default_rng(0).random((h, w), dtype=np.float32)
    want = cv2.resize(probe, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    got = ry.astype(np.float64) @ probe @ rx.T.astype(np.float64)
    if not np.allclose(got, want, rtol=0, atol=1e-5):
        raise GpuUnavailable(
            f"resizing {w}x{h} to {spec.width}x{spec.height} is not one separable area "
            "filter in OpenCV: the crop is prepared on the host"
        )
    return ry, rx


def _support(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output index, the half-open range of input indices with a non-zero weight."""
    nonzero = weights != 0
    lo = np.argmax(nonzero, axis=1)
    hi = weights.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return lo.astype(np.int32), hi.astype(np.int32)


def _grid(width: int, height: int) -> tuple[int, int]:
    return (width + _BLOCK[0] - 1) // _BLOCK[0], (height + _BLOCK[1] - 1) // _BLOCK[1]


class DeviceCrop:
    """Writes the model input of registered parts into a backend's device input buffer.

    ``ref`` and ``size`` (W, H) are the template's reference point and window; ``spec`` the
    engine's input. One per inspection worker: it queues everything on ``target.stream`` and
    reuses its device buffers (frame, scratch) from part to part.
    """

    def __init__(
        self, target: DeviceInput, ref: tuple[float, float], size: tuple[int, int], spec: InputSpec
    ) -> None:
        self.target = target
        self.device: CudaDevice = target.device
        self.ref = ref
        self.size = size
        self.spec = spec
        stream, device = target.stream, target.device
        w, h = size
        self._resize = (h, w) != (spec.height, spec.width)
        self._frames: dict[tuple[tuple[int, ...], np.dtype], Any] = {}
        if self._resize:
            ry, rx = separable_area(size, spec)
            (ylo, yhi), (xlo, xhi) = _support(ry), _support(rx)
            self._rows = [device.upload(a, stream) for a in (ry, ylo, yhi)]
            self._cols = [device.upload(a, stream) for a in (rx, xlo, xhi)]
            self._crop = device.empty((spec.channels, h, w), np.float32, stream)
            self._half = device.empty((spec.channels, h, spec.width), np.float32, stream)
        self._warp = device.kernel(_warp)
        self._resize_x = device.kernel(_resize_x)
        self._resize_y = device.kernel(_resize_y)

    def stage(self, row: int, frame: np.ndarray, pose: Pose) -> None:
        """Queue: upload ``frame`` (H, W[, C]) uint8/uint16, cut the part at ``pose``, write
        the (C, H, W) float32 model input into row ``row`` of the target buffer."""
        stream = self.target.stream
        image = frame.reshape(frame.shape[0], frame.shape[1], -1)
        key = (image.shape, image.dtype)
        buffer = self._frames.get(key)
        if buffer is None:
            buffer = self.device.empty(image.shape, image.dtype, stream)
            self._frames[key] = buffer
        self.device.upload(image, stream, out=buffer)
        m = template_to_frame(pose, self.ref).astype(np.float32).ravel()
        top = np.float32(_MAX[image.dtype])
        out = self.target.buffer[row]
        crop = self._crop if self._resize else out
        w, h = self.size
        self._warp[_grid(w, h), _BLOCK, stream](buffer, *m, top, crop)
        if self._resize:
            self._resize_x[_grid(self.spec.width, h), _BLOCK, stream](crop, *self._cols, self._half)
            grid = _grid(self.spec.width, self.spec.height)
            self._resize_y[grid, _BLOCK, stream](self._half, *self._rows, out)
