"""The one CUDA binding of the GPU path: Numba's own CUDA API.

Why Numba rather than cuda-python or pycuda: registration already runs its voting kernels
through ``numba.cuda``, so Numba is installed wherever the GPU path runs, and Numba works in
the device's *primary* context, which is the context the CUDA runtime (and so TensorRT) uses.
The frame, the aligned crop and TensorRT's input and output buffers therefore live in one
context with one allocator and one set of streams; a pointer handed to TensorRT is valid as is.
cuda-python would be a second dependency doing the same job; pycuda creates a context of its own
(push/pop around every call, or pointers that are invalid in TensorRT's) and is compiled per
CUDA version, which JetPack upgrades. Numba's device arrays publish their address through
``__cuda_array_interface__`` (what ``set_tensor_address`` takes) and its streams their
``CUstream`` handle (what ``execute_async_v3`` takes).

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` before numba is imported, or
``CudaDevice.simulator()`` in any process) kernels run as Python threads and device arrays are
host arrays: the "device address" of one is its host address and the stream handle is 0. That
is how the GPU path is tested on machines without a GPU.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.errors import PartSightError

log = logging.getLogger(__name__)


class GpuUnavailable(PartSightError):
    """No usable CUDA GPU (or no usable numba.cuda) on this machine."""


class CudaDevice:
    """The current CUDA device through Numba: allocation, copies, streams, kernels.

    ``name`` and ``compute_capability`` identify the GPU (TensorRT plans are only valid on the
    GPU they were built for). Copies and kernels take the stream they are queued on; nothing
    here synchronises except ``synchronize``.
    """

    def __init__(self, cuda: Any, *, simulated: bool) -> None:
        self._cuda = cuda
        self.simulated = simulated
        self._kernels: dict[Callable[..., None], Any] = {}
        if simulated:
            self.name = "Numba CUDA simulator"
            self.compute_capability: tuple[int, int] = tuple(
                cuda.current_context().device.compute_capability
            )
        else:
            device = cuda.get_current_device()
            name = device.name
            self.name = name.decode() if isinstance(name, bytes) else str(name)
            self.compute_capability = tuple(device.compute_capability)

    @classmethod
    def open(cls) -> CudaDevice:
        """The GPU Numba finds (GpuUnavailable if none); Numba's simulator when
        NUMBA_ENABLE_CUDASIM=1."""
        try:
            from numba import cuda
            from numba.core import config
        except (ImportError, OSError) as exc:
            raise GpuUnavailable(f"numba.cuda cannot be imported ({exc})") from exc
        if not cuda.is_available():
            raise GpuUnavailable(
                "Numba finds no usable CUDA GPU (is the NVIDIA driver loaded, and numba-cuda "
                "installed?)"
            )
        return cls(cuda, simulated=bool(config.ENABLE_CUDASIM))  # type: ignore[attr-defined]

    @classmethod
    def simulator(cls) -> CudaDevice:
        """Numba's CUDA simulator in this process, whatever NUMBA_ENABLE_CUDASIM says (tests,
        dry runs): kernels run as Python threads on host arrays."""
        from numba.cuda import simulator

        return cls(simulator, simulated=True)

    def __str__(self) -> str:
        major, minor = self.compute_capability
        return f"{self.name} (compute capability {major}.{minor})"

    # -- memory ---------------------------------------------------------------------------

    def stream(self) -> Any:
        """A new CUDA stream (one per inspection worker)."""
        return self._cuda.stream()

    def empty(self, shape: tuple[int, ...], dtype: Any, stream: Any) -> Any:
        """An uninitialised device array."""
        return self._cuda.device_array(shape, dtype=np.dtype(dtype), stream=stream)

    def upload(self, host: np.ndarray, stream: Any, out: Any | None = None) -> Any:
        """Host → device copy, into ``out`` (same shape and dtype) or a new device array."""
        host = np.ascontiguousarray(host)
        if out is None:
            return self._cuda.to_device(host, stream=stream)
        out.copy_to_device(host, stream=stream)
        return out

    def download(self, array: Any, stream: Any) -> np.ndarray:
        """Device → host copy, queued on ``stream``: valid once the stream is synchronised."""
        return np.asarray(array.copy_to_host(stream=stream))

    @staticmethod
    def synchronize(stream: Any) -> None:
        stream.synchronize()

    def pointer(self, array: Any) -> int:
        """The device address of a device array (for TensorRT's set_tensor_address)."""
        if self.simulated:  # a simulated device array wraps a host array
            return int(array.ctypes.data)
        return int(array.__cuda_array_interface__["data"][0])

    def stream_handle(self, stream: Any) -> int:
        """The CUstream handle as an int (for TensorRT's execute_async_v3); 0 is the default
        stream (and the simulator's)."""
        if self.simulated:
            return 0
        handle = stream.handle  # ctypes binding: c_void_p; NVIDIA binding: CUstream (int-able)
        value = handle.value if isinstance(handle, ctypes.c_void_p) else int(handle)
        return int(value or 0)

    # -- kernels --------------------------------------------------------------------------

    def kernel(self, function: Callable[..., None]) -> Any:
        """``function`` compiled as a CUDA kernel for this binding (once; then cached).

        Kernels are plain functions that use ``numba.cuda``'s intrinsics; compiling them here
        rather than with a decorator at import lets the simulator run the very same code."""
        compiled = self._kernels.get(function)
        if compiled is None:
            compiled = self._cuda.jit(function)
            self._kernels[function] = compiled
        return compiled
