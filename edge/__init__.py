"""PartSight edge runtime: what runs on the line. Imports numpy, OpenCV, Numba and an inference
backend (ONNX Runtime or TensorRT), never torch."""

__version__ = "0.1.0"
