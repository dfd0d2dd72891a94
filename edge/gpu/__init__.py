"""The GPU path: one CUDA binding (Numba's) for device memory, streams and kernels, and the
kernels that cut the registered part out of the frame straight into the engine's input.

Imported only by configurations that run on a GPU (TensorRT, registration on CUDA).
"""

from edge.gpu.device import CudaDevice, GpuUnavailable

__all__ = ["CudaDevice", "GpuUnavailable"]
