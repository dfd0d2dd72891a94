"""Runs of synthetic parts with drifts injected at known parts, for the metrics monitor.

A run is a folder of frames named in line order (`00001.png`, …), which the replay camera plays
back as a line would deliver them, and `run.csv` saying what was done to each. Drifts, each
from part `start` up to (not including) part `end` (the cause removed), or to the end:

- `lamp:START[-END]:RATE`     the lamp dims: the frame loses RATE (e.g. 0.01) of its light every
                              50 parts after START (a gain on every pixel);
- `shift:START[-END]:PX`      the part sits PX pixels to the right in its fixture;
- `defects:START[-END]:RATE`  the defect rate steps from the run's base rate to RATE.

    partsight-train synth RUN --drift lamp:300-600:0.01 --drift defects:800-1100:0.10 \\
        --count 1400 --size 64

Rendered with the dataset's own generator (trainer.synth.PartGenerator), so an engine trained
on `synth` data of the same seed, size and pose settings judges these parts.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from trainer.progress import progress_bar
from trainer.synth import PartGenerator, SynthConfig
from trainer.synth_types import DEFECT_TYPES

DriftKind = Literal["lamp", "shift", "defects"]
_SYNTAX = re.compile(r"^(lamp|shift|defects):(\d+)(?:-(\d+))?:([0-9.eE+-]+)$")
_LAMP_PERIOD = 50  # parts per RATE of light lost


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    start: int  # first part affected (1-based)
    end: int | None  # first part no longer affected; None: to the end of the run
    value: float  # lamp: light lost per 50 parts; shift: px; defects: the new rate

    @classmethod
    def parse(cls, text: str) -> Drift:
        """`KIND:START[-END]:VALUE`; ValueError with the reason otherwise."""
        found = _SYNTAX.match(text.strip())
        if found is None:
            raise ValueError(
                f"drift {text!r}: expected KIND:START[-END]:VALUE with KIND lamp, shift or defects"
            )
        kind, start, end, value = found.groups()
        drift = cls(kind, int(start), None if end is None else int(end), float(value))  # type: ignore[arg-type]
        if drift.start < 1 or (drift.end is not None and drift.end <= drift.start):
            raise ValueError(f"drift {text!r}: parts are counted from 1 and END must follow START")
        if drift.kind in ("lamp", "defects") and not 0 <= drift.value <= 1:
            raise ValueError(f"drift {text!r}: {drift.kind} takes a fraction in [0, 1]")
        return drift

    def active(self, part: int) -> bool:
        return part >= self.start and (self.end is None or part < self.end)


@dataclass(frozen=True)
class RunSummary:
    path: Path
    parts: int
    defects: int


def gain(drifts: Sequence[Drift], part: int) -> float:
    """The light the lamp gives at `part`, 1 = as at the start."""
    light = 1.0
    for drift in drifts:
        if drift.kind == "lamp" and drift.active(part):
            light *= max(0.0, 1.0 - drift.value * (part - drift.start) / _LAMP_PERIOD)
    return light


def shift(drifts: Sequence[Drift], part: int) -> float:
    return sum(d.value for d in drifts if d.kind == "shift" and d.active(part))


def defect_rate(drifts: Sequence[Drift], part: int, base: float) -> float:
    rates = [d.value for d in drifts if d.kind == "defects" and d.active(part)]
    return rates[-1] if rates else base


def write_run(
    out: Path,
    count: int,
    config: SynthConfig,
    seed: int,
    drifts: Sequence[Drift] = (),
    base_defect_rate: float = 0.02,
    progress: bool = True,
) -> RunSummary:
    """Write `count` frames of one part family (`seed`) with `drifts` into `out` (created;
    refused if it holds files already)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not 0 <= base_defect_rate <= 1:
        raise ValueError(f"base defect rate must be in [0, 1], got {base_defect_rate}")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    generator = PartGenerator(config, seed)
    width = max(5, len(str(count)))
    rows = []
    defects = 0
    bar = progress_bar(count, "run", "part", enabled=progress)
    for part in range(1, count + 1):
        rng = np.random.default_rng([seed, part])
        kind = "good"
        if rng.random() < defect_rate(drifts, part, base_defect_rate):
            kind = str(rng.choice(DEFECT_TYPES))
            defects += 1
        image = generator.render(kind, rng).image
        light, dx = gain(drifts, part), shift(drifts, part)
        image = _expose(_translate(image, dx), light)
        name = f"{part:0{width}d}.png"
        cv2.imwrite(str(out / name), image)
        rows.append(
            {"part": part, "file": name, "type": kind, "gain": f"{light:.4f}", "shift_px": dx}
        )
        bar.update(1)
    bar.close()
    with (out / "run.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return RunSummary(out, count, defects)


def _translate(image: np.ndarray, dx: float) -> np.ndarray:
    if dx == 0:
        return image
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]])
    size = (image.shape[1], image.shape[0])
    return cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _expose(image: np.ndarray, light: float) -> np.ndarray:
    if light == 1.0:
        return image
    full = np.iinfo(image.dtype).max
    return np.clip(np.rint(image.astype(np.float64) * light), 0, full).astype(image.dtype)
