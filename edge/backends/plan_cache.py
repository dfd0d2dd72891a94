"""The TensorRT plan cache: plans built on this device, keyed by what they were built from.

A plan (a serialized TensorRT engine) is only valid for the ONNX file, the TensorRT version,
the GPU (name and compute capability), the precision and the optimisation profile it was built
for. Each plan is stored as ``<precision>-<digest>.plan`` with ``<...>.json`` beside it: the
full key and the plan's own sha256. A plan is used only when its key file says exactly the key
asked for and the plan's bytes hash to what the key file says; anything else (a stale plan, a
truncated or corrupt file, a plan copied from another device or engine) is logged and rebuilt,
never trusted. Files are written to a temporary name and renamed, so a crash mid-write leaves
no half plan behind.

The builder's timing cache (measured kernel timings, reusable across models on the same GPU
and TensorRT version) is kept beside the plans, one per TensorRT version and GPU, so a rebuild
or a new engine builds faster. An FP16 plan whose golden samples failed is remembered too, so
the next start goes straight to FP32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PlanKey:
    """What a plan was built from. ``compute_capability`` as "major.minor"; ``max_batch``: the
    optimisation profile covers batches 1..max_batch (optimised for 1, the daemon's size)."""

    onnx_sha256: str
    tensorrt: str
    gpu: str
    compute_capability: str
    precision: str
    max_batch: int

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: expected one of {PRECISIONS}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def digest(self) -> str:
        """16 hex digits naming the plan file (sha256 of the key)."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def device_digest(self) -> str:
        """Names the timing cache: TensorRT version and GPU only."""
        text = json.dumps([self.tensorrt, self.gpu, self.compute_capability])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_precision(self, precision: str) -> PlanKey:
        return PlanKey(**{**self.as_dict(), "precision": precision})  # type: ignore[arg-type]


class PlanCache:
    """Plans under ``directory`` (created on first store)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def plan_path(self, key: PlanKey) -> Path:
        return self.directory / f"{key.precision}-{key.digest}.plan"

    def key_path(self, key: PlanKey) -> Path:
        return self.plan_path(key).with_suffix(".json")

    def timing_path(self, key: PlanKey) -> Path:
        return self.directory / f"timing-{key.device_digest}.cache"

    def _rejected_path(self, key: PlanKey) -> Path:
        return self.plan_path(key).with_suffix(".rejected")

    def load(self, key: PlanKey) -> bytes | None:
        """The cached plan for ``key``, or None (logging why) when there is none or it cannot
        be trusted."""
        plan_path, key_path = self.plan_path(key), self.key_path(key)
        if not plan_path.is_file():
            log.info("no cached TensorRT plan %s", plan_path.name)
            return None
        try:
            stored = json.loads(key_path.read_text())
            recorded_key, recorded_hash = stored["key"], str(stored["plan_sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("TensorRT plan %s: its key file is missing or unreadable (%s): "
                        "rebuilding", plan_path.name, exc)  # fmt: skip
            return None
        if recorded_key != key.as_dict():
            changed = sorted(
                k for k, v in key.as_dict().items()
                if not isinstance(recorded_key, dict) or recorded_key.get(k) != v
            )  # fmt: skip
            log.warning("TensorRT plan %s was built for another %s: rebuilding",
                        plan_path.name, ", ".join(changed) or "key")  # fmt: skip
            return None
        plan = plan_path.read_bytes()
        if hashlib.sha256(plan).hexdigest() != recorded_hash:
            log.warning("TensorRT plan %s does not match its recorded sha256 (corrupt or "
                        "replaced): rebuilding", plan_path.name)  # fmt: skip
            return None
        return plan

    def store(self, key: PlanKey, plan: bytes, build_seconds: float) -> Path:
        """Write the plan and its key file; returns the plan's path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {
            "key": key.as_dict(),
            "plan_sha256": hashlib.sha256(plan).hexdigest(),
            "plan_bytes": len(plan),
            "build_seconds": round(build_seconds, 3),
        }
        _write_atomic(self.plan_path(key), plan)
        _write_atomic(self.key_path(key), (json.dumps(record, indent=2) + "\n").encode())
        return self.plan_path(key)

    def discard(self, key: PlanKey) -> None:
        """Remove a plan that TensorRT itself refused to load."""
        for path in (self.plan_path(key), self.key_path(key)):
            path.unlink(missing_ok=True)

    def load_timing(self, key: PlanKey) -> bytes:
        """The timing cache for this TensorRT version and GPU (b"" if none yet)."""
        path = self.timing_path(key)
        return path.read_bytes() if path.is_file() else b""

    def store_timing(self, key: PlanKey, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.timing_path(key), data)

    def fp16_rejected(self, key: PlanKey) -> str | None:
        """Why the FP16 plan for this key failed its golden samples, if it did."""
        path = self._rejected_path(key.with_precision("fp16"))
        return path.read_text().strip() if path.is_file() else None

    def reject_fp16(self, key: PlanKey, why: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._rejected_path(key.with_precision("fp16")), (why + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
