"""The pipeline's counters: what the STATUS line, the metrics topic and the tests read."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from edge.daemon.verdict import VERDICTS, Verdict

_LATENCY_WINDOW = 2048  # recent trigger-to-verdict latencies kept for the percentiles


@dataclass(frozen=True)
class Snapshot:
    parts: int  # verdicts settled
    verdicts: dict[str, int]  # OK / NOK / ERROR
    reasons: dict[str, int]  # per reason, rejected parts only
    passed: dict[str, int]  # per reason, parts passed with one: "nuisance"
    overload: int  # parts dropped because the pipeline was full (also in reasons)
    late_verdicts: int  # inspection verdicts that came after the part's deadline verdict
    heartbeats: int
    publish_failures: int  # results that could not be stored in the outbox
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None
    uptime_s: float
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean per stage, recent parts

    def as_dict(self) -> dict[str, object]:
        return {
            "parts": self.parts,
            "verdicts": dict(self.verdicts),
            "reasons": dict(self.reasons),
            "passed": dict(self.passed),
            "overload": self.overload,
            "late_verdicts": self.late_verdicts,
            "heartbeats": self.heartbeats,
            "publish_failures": self.publish_failures,
            "latency_ms": {
                "p50": self.latency_ms_p50,
                "p99": self.latency_ms_p99,
                "max": self.latency_ms_max,
                "stages": dict(self.stage_ms),
            },
            "uptime_s": round(self.uptime_s, 3),
        }


class PipelineCounters:
    """Thread-safe; written by the output stage, read by the main loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._verdicts: Counter[str] = Counter({v: 0 for v in VERDICTS})
        self._reasons: Counter[str] = Counter()
        self._passed: Counter[str] = Counter()
        self._late = 0
        self._heartbeats = 0
        self._publish_failures = 0
        self._latency: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._stages: deque[dict[str, float]] = deque(maxlen=256)

    def record(self, verdict: Verdict) -> None:
        with self._lock:
            self._verdicts[verdict.verdict] += 1
            if verdict.rejected:
                self._reasons[verdict.reason] += 1
            elif verdict.reason:
                self._passed[verdict.reason] += 1
            self._latency.append(verdict.total_ms)
            self._stages.append(dict(verdict.latency_ms))

    def late_verdict(self) -> None:
        with self._lock:
            self._late += 1

    def heartbeat(self) -> None:
        with self._lock:
            self._heartbeats += 1

    def publish_failed(self) -> None:
        with self._lock:
            self._publish_failures += 1

    @property
    def parts(self) -> int:
        with self._lock:
            return sum(self._verdicts.values())

    def snapshot(self) -> Snapshot:
        with self._lock:
            latencies = sorted(self._latency)
            stages: dict[str, list[float]] = {}
            for entry in self._stages:
                for name, ms in entry.items():
                    stages.setdefault(name, []).append(ms)
            return Snapshot(
                parts=sum(self._verdicts.values()),
                verdicts=dict(self._verdicts),
                reasons=dict(self._reasons),
                passed=dict(self._passed),
                overload=self._reasons.get("overload", 0),
                late_verdicts=self._late,
                heartbeats=self._heartbeats,
                publish_failures=self._publish_failures,
                latency_ms_p50=percentile(latencies, 50),
                latency_ms_p99=percentile(latencies, 99),
                latency_ms_max=latencies[-1] if latencies else None,
                uptime_s=time.monotonic() - self._started,
                stage_ms={k: round(sum(v) / len(v), 3) for k, v in stages.items()},
            )


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-th percentile of sorted values (nearest rank), rounded to µs; None when empty."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[rank], 3)
