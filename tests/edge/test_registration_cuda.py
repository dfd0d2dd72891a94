"""The CUDA voting kernel gives the same accumulator and the same pose as the CPU kernel.

Without a GPU the kernel runs under Numba's CUDA simulator, which must be switched on before
numba is first imported; so the check runs in a fresh interpreter. The simulator runs every
GPU thread as a Python thread: the case is tiny (48 px template, 64 px frame, a few angles).
On a machine with a GPU the same check runs on the real device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json
import cv2
import numpy as np
from edge.registration import Registrar, Template
from edge.registration.edges import edge_points
from edge.registration.ght_cpu import CpuVoter
from edge.registration.ght_cuda import CudaVoter
from edge.registration.image import pyramid, to_grey

tpl = np.full((48, 48), 40, np.uint8)
outline = np.array([[8, 10], [38, 7], [41, 22], [33, 39], [15, 41], [7, 27]])
cv2.fillPoly(tpl, [outline], 200, lineType=cv2.LINE_AA)
cv2.circle(tpl, (19, 21), 5, 40, -1, cv2.LINE_AA)
m = cv2.getRotationMatrix2D((23.5, 23.5), 3.0, 1.0)
m[:, 2] += (33 - 23.5, 30 - 23.5)
frame = cv2.warpAffine(tpl, m, (64, 64), borderValue=40)

template = Template.build(tpl, angle_range=(-8.0, 8.0), coarse_size=16)
cpu = Registrar(template, device="cpu", finest_vote_level=0)
gpu = Registrar(template, device="cuda", finest_vote_level=0)
top = template.coarse_level
img = pyramid(to_grey(frame), top)[top]
level = cpu._levels[-1]
pts = edge_points(img, level.model.edge_threshold)
hyp = cpu._coarse_hyp
acc_c, val_c, idx_c = CpuVoter().vote(pts, hyp, level.table, (0, 0), img.shape, keep=True)
_, val_fast, idx_fast = CpuVoter().vote(pts, hyp, level.table, (0, 0), img.shape)
voter = CudaVoter()
acc_g, val_g, idx_g = voter.vote(pts, hyp, level.table, (0, 0), img.shape)
acc_g = voter.accumulator(acc_g)
# a local vote: small window, R-table entries that cannot reach it skipped ("ring")
from edge.registration.rtable import hypotheses
fine = pyramid(to_grey(frame), top)[0]
lvl0 = cpu._levels[0]
pts0 = edge_points(fine, lvl0.model.edge_threshold)
hyp0 = hypotheses(np.array([1.0, 2.5, 4.0]), np.array([1.0]))
win = ((30, 27), (7, 7))
ring_c, _, _ = CpuVoter().vote(pts0, hyp0, lvl0.table, *win, keep=True, ring=True)
full_c, _, _ = CpuVoter().vote(pts0, hyp0, lvl0.table, *win, keep=True)
ring_g, rv_g, ri_g = voter.vote(pts0, hyp0, lvl0.table, *win, ring=True)
ring_g = voter.accumulator(ring_g)
a, b = cpu.register(frame), gpu.register(frame)
print(json.dumps({
    "device": gpu.device,
    "points": len(pts), "hypotheses": len(hyp), "votes": int(acc_c.sum()),
    "acc_equal": bool(np.array_equal(acc_c, acc_g)),
    "peaks_equal": bool(np.array_equal(val_c, val_g) and np.array_equal(idx_c, idx_g)),
    "fast_peaks_equal": bool(np.array_equal(val_fast, val_g) and np.array_equal(idx_fast, idx_g)),
    "ring_votes": int(full_c.sum()),
    "ring_equal": bool(np.array_equal(ring_c, full_c) and np.array_equal(ring_c, ring_g)),
    "pose_cpu": [a.pose.x, a.pose.y, a.pose.angle_deg],
    "pose_gpu": [b.pose.x, b.pose.y, b.pose.angle_deg],
    "conf": [a.confidence, b.confidence],
}))
"""


def _gpu_present() -> bool:
    # Asked in a child too: importing numba.cuda here would fix this process's mode.
    probe = "from numba import cuda; print(cuda.is_available())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    return out.stdout.strip().endswith("True")


@pytest.mark.parametrize("mode", ["simulator", "gpu"])
def test_cuda_kernel_matches_cpu(mode: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if mode == "simulator":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
        if not _gpu_present():
            pytest.skip("no CUDA GPU here; the simulator case covers the kernel")
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=300,
        cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["device"] == "cuda"
    assert result["votes"] > 0 and result["hypotheses"] >= 3
    assert result["acc_equal"], result  # integer votes: bit-identical accumulators
    assert result["peaks_equal"] and result["fast_peaks_equal"], result
    assert result["ring_votes"] > 0 and result["ring_equal"], result  # skipping changes nothing
    assert result["pose_cpu"] == result["pose_gpu"], result  # same votes -> same pose
    assert result["conf"][0] == result["conf"][1] > 0.9, result
    assert abs(result["pose_cpu"][0] - 33.0) < 0.2 and abs(result["pose_cpu"][1] - 30.0) < 0.2
    assert abs(result["pose_cpu"][2] - 3.0) < 0.1
