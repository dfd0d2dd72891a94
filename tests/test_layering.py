"""The edge runtime must never pull in torch: it runs on a Jetson without it."""

import subprocess
import sys

import pytest

EDGE_MODULES = [
    "edge",
    "edge.cli",
    "edge.inspector",
    "edge.bundle",
    "edge.backends.onnxruntime",
    "edge.overlay",
    "edge.config",
    "edge.systemd",
    "edge.part_ids",
    "edge.registration",
    "edge.mqtt",
    "edge.daemon",
    "edge.daemon.main",
    "edge.store",
    "edge.store.cli",
    "hw",
    "hw.camera",
    "hw.camera.basler",
    "hw.camera.replay",
    "hw.reject",
]


@pytest.mark.parametrize("module", EDGE_MODULES)
def test_importing_edge_never_imports_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"{module} imported torch"


def test_the_check_detects_torch() -> None:
    """Guard the guard: the same probe does see torch when something imports it."""
    code = "import sys, trainer.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
