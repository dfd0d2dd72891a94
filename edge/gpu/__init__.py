"""The GPU path: one CUDA binding (Numba's, ``device``) for device memory, streams and kernels,
and the kernels that cut the registered part out of the frame straight into the engine's
input (``crop``). Imported only by configurations that run on a GPU.

With ``registration.device = "cuda"`` and the TensorRT backend, per part:

- host → device: the frame, once (uint8/uint16, e.g. 1 MiB at 1024x1024 mono): the camera
  delivers it into host memory, and registration's pyramid, edge extraction and least-squares
  refinement run on the CPU from that host copy;
- host → device: the frame's edge points and the vote hypotheses for each vote (a few hundred
  kB): the voting kernel runs on the GPU, the edge extraction does not;
- device → host: each vote's per-slice peaks (12 bytes per hypothesis): candidate selection
  and refinement are on the CPU;
- device → host: the score (4 bytes) and the anomaly map (4·H·W bytes): the verdict, the
  regions and the published heatmap are computed on the host.

Not copied: the aligned crop and the model input (written by ``crop`` into TensorRT's input
buffer), the reconstruction (TensorRT's output buffer) unless the heatmap classifier's residual
features read it (then it comes back with the score, for every part of the batch). Once per
engine: the R-tables, the resize weights, TensorRT's plan. The pose travels as six kernel
arguments, not as a copy.
"""

from edge.gpu.device import CudaDevice, GpuUnavailable

__all__ = ["CudaDevice", "GpuUnavailable"]
