"""The GPU crop (edge.gpu.crop) writes the same model input as the host path (OpenCV warp, then
edge.preprocess.to_model_input), into the requested row of the backend's device buffer.

No GPU here: the kernels run under Numba's CUDA simulator (CudaDevice.simulator()), the very
code a GPU runs, one Python thread per CUDA thread; so the images are small. The 8-bit case is
exact against this machine's OpenCV (>= 4.11 computes bilinear weights in float, as the kernel
does; see the module docstring).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.backends import DeviceInput, ModelOutputs
from edge.gpu.crop import DeviceCrop, separable_area
from edge.gpu.device import CudaDevice, GpuUnavailable
from edge.manifest import InputSpec
from edge.preprocess import to_model_input
from edge.registration import Pose
from edge.registration.warp import warp_to_template

FRAME = (70, 90)  # H, W


def _frame(dtype: type, channels: int) -> np.ndarray:
    """A part-like picture: anti-aliased shapes, a gradient and noise (all values used)."""
    rng = np.random.default_rng(1)
    h, w = FRAME
    base = np.linspace(30, 90, w)[None, :] + np.linspace(0, 40, h)[:, None]
    img = np.repeat(base[:, :, None], channels, axis=2).astype(np.float32)
    for c in range(channels):
        layer = np.ascontiguousarray(img[:, :, c])
        cv2.circle(layer, (40 + 3 * c, 33), 17, 210.0, -1, cv2.LINE_AA)
        cv2.rectangle(layer, (55, 12), (80, 30), 140.0 + 20 * c, -1, cv2.LINE_AA)
        img[:, :, c] = layer
    img += rng.normal(0, 6, img.shape)
    top = 255 if dtype is np.uint8 else 65535
    scaled = np.clip(img / 255.0 * top, 0, top)
    out = np.rint(scaled).astype(dtype)
    return out[:, :, 0] if channels == 1 else out


def _target(device: CudaDevice, spec: InputSpec, rows: int = 3) -> DeviceInput:
    stream = device.stream()
    buffer = device.empty((rows, spec.channels, spec.height, spec.width), np.float32, stream)
    device.upload(np.full((rows, spec.channels, spec.height, spec.width), -1.0, np.float32),
                  stream, out=buffer)  # fmt: skip

    def unused(n: int) -> ModelOutputs:
        raise AssertionError("the crop never runs the model")

    def read(n: int) -> np.ndarray:
        return device.download(buffer[:n], stream)

    return DeviceInput(
        device=device, stream=stream, buffer=buffer, max_batch=rows, run=unused, read=read
    )


def _spec(channels: int, size: tuple[int, int]) -> InputSpec:
    return InputSpec(
        channels=channels, height=size[1], width=size[0],
        source_height=FRAME[0], source_width=FRAME[1],
    )  # fmt: skip


def _host(frame: np.ndarray, pose: Pose, size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    ref = ((size[0] - 1) / 2.0, (size[1] - 1) / 2.0)
    return to_model_input(warp_to_template(frame, pose, ref, size), spec)


def _device(
    frame: np.ndarray, pose: Pose, size: tuple[int, int], spec: InputSpec, row: int = 1
) -> np.ndarray:
    device = CudaDevice.simulator()
    target = _target(device, spec)
    ref = ((size[0] - 1) / 2.0, (size[1] - 1) / 2.0)
    DeviceCrop(target, ref, size, spec).stage(row, frame, pose)
    out = device.download(target.buffer, target.stream)
    device.synchronize(target.stream)
    others = np.delete(out, row, axis=0)
    assert np.all(others == -1.0), "only the requested row is written"
    return out[row]


# Rotated, off-centre and partly outside the frame (the border reads as 0, like OpenCV's).
POSES = [Pose(41.3, 36.7, 17.3), Pose(14.2, 36.6, -131.0, 1.1)]
SIZE = (40, 30)  # template window W x H (not square: catches a swapped axis)


@pytest.mark.parametrize(("pose", "cut"), [(POSES[0], False), (POSES[1], True)])
def test_8bit_mono_crop_is_exactly_the_host_crop(pose: Pose, cut: bool) -> None:
    frame = _frame(np.uint8, 1)
    spec = _spec(1, SIZE)
    host = _host(frame, pose, SIZE, spec)
    got = _device(frame, pose, SIZE, spec)
    assert got.shape == host.shape == (1, 30, 40)
    assert np.array_equal(got, host), np.abs(got - host).max()
    assert (host > 0.5).any()  # the part is in the crop
    assert (host == 0).any() == cut  # and the second pose reaches past the frame's border


def test_8bit_colour_crop_is_exactly_the_host_crop() -> None:
    frame = _frame(np.uint8, 3)
    spec = _spec(3, SIZE)
    host = _host(frame, POSES[0], SIZE, spec)
    got = _device(frame, POSES[0], SIZE, spec, row=2)
    assert got.shape == (3, 30, 40)
    assert np.array_equal(got, host), np.abs(got - host).max()


def test_16bit_crop_is_within_one_grey_level() -> None:
    frame = _frame(np.uint16, 1)
    spec = _spec(1, SIZE)
    host = _host(frame, POSES[0], SIZE, spec)
    got = _device(frame, POSES[0], SIZE, spec, row=0)
    assert np.abs(got - host).max() <= 1.0 / 65535 + 1e-7
    assert np.mean(got == host) > 0.9


@pytest.mark.parametrize("model_size", [(20, 15), (26, 21), (56, 44), (20, 45)])
def test_resized_crop_matches_inter_area(model_size: tuple[int, int]) -> None:
    frame = _frame(np.uint8, 1)
    spec = _spec(1, model_size)
    host = _host(frame, POSES[0], SIZE, spec)
    got = _device(frame, POSES[0], SIZE, spec)
    assert got.shape == host.shape == (1, model_size[1], model_size[0])
    np.testing.assert_allclose(got, host, rtol=0, atol=2e-6)


def test_weights_that_miss_opencv_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The weights are read off OpenCV and checked against a real resize at start-up: were an
    # OpenCV version to resize some sizes non-separably, the host path would take over.
    from edge.gpu import crop

    def linear(size_in: int, size_out: int) -> np.ndarray:
        eye = np.eye(size_in, dtype=np.float32)
        return cv2.resize(eye, (size_out, size_in), interpolation=cv2.INTER_LINEAR).T

    assert separable_area((40, 30), _spec(1, (26, 21)))[0].shape == (21, 30)
    monkeypatch.setattr(crop, "area_weights", linear)
    with pytest.raises(GpuUnavailable, match="prepared on the host"):
        separable_area((40, 30), _spec(1, (26, 21)))
