"""The monitor on streams of results: warm-up, the alert each drift raises (and only that one),
clearing with hysteresis, rate limits, persistence across restarts and engine changes, levels,
and O(1) state."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.config.monitor import MonitorConfig
from edge.monitor import (
    AlertEvent,
    Monitor,
    ObservationError,
    PartObservation,
    StationSample,
    active_payload,
    alert_payload,
    load_state,
    save_state,
)
from tests.edge.monitor_stream import PERIOD_S, Line, camera_fault, parts

LINE = Line()


def config(**overrides: Any) -> MonitorConfig:
    data = {"state_file": Path("/nonexistent/monitor-state.json"), **overrides}
    return MonitorConfig.model_validate(data)


def feed(monitor: Monitor, payloads: Any) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for payload in payloads:
        events.extend(monitor.observe(PartObservation.from_result(payload)))
    return events


def warmed(seed: int = 0, **overrides: Any) -> tuple[Monitor, np.random.Generator]:
    monitor = Monitor(config(**overrides), engine="tiny@0.1.0#abc", deadline_ms=500)
    rng = np.random.default_rng(seed)
    assert feed(monitor, parts(LINE, 1, 600, rng)) == []
    return monitor, rng


def raised(events: list[AlertEvent]) -> list[str]:
    return [e.alert.metric for e in events if e.kind == "raised"]


def cleared(events: list[AlertEvent]) -> list[str]:
    return [e.alert.metric for e in events if e.kind == "cleared"]


def test_the_warm_up_is_announced_and_sets_every_baseline(caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor(config(warmup_parts=200), engine="e", deadline_ms=500)
    rng = np.random.default_rng(1)
    with caplog.at_level(logging.INFO, logger="edge.monitor"):
        feed(monitor, parts(LINE, 1, 150, rng))
        assert monitor.snapshot()["warmup_done"] is False
        assert monitor.snapshot()["metrics"]["brightness"]["warmup"] == {"parts": 150, "of": 200}
        feed(monitor, parts(LINE, 151, 60, rng))
    snapshot = monitor.snapshot()
    assert snapshot["warmup_done"] is True
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("monitor: brightness baseline 0.4") for line in lines), lines
    assert any(line.startswith("monitor: anomaly_rate baseline") for line in lines), lines
    brightness = snapshot["metrics"]["brightness"]
    assert brightness["state"] == "in_control" and brightness["detector"] == "cusum"
    assert brightness["baseline"] == pytest.approx(0.4, rel=0.005)
    assert snapshot["metrics"]["pose_x"]["baseline"] == pytest.approx(100.0, abs=0.3)
    # p0 is the upper end of the Wilson interval of what the warm-up saw (2 % on average)
    assert 0.005 < snapshot["metrics"]["anomaly_rate"]["baseline"] < 0.05
    json.dumps(snapshot, allow_nan=False)  # the metrics topic's payload


def test_a_stationary_line_raises_no_alert_in_5000_parts() -> None:
    # With the defaults, about 0.13 false alarms are expected in 5,000 parts (config docs).
    monitor, rng = warmed(seed=2)
    assert feed(monitor, parts(LINE, 601, 5000, rng)) == []
    assert monitor.active() == []


def _first(events: list[AlertEvent], kind: str) -> AlertEvent:
    return next(e for e in events if e.kind == kind)


def test_a_dimming_lamp_raises_brightness_only_and_clears_once_it_is_fixed() -> None:
    monitor, rng = warmed(seed=3)
    events: list[AlertEvent] = []
    # the lamp loses 1 % every 50 parts from part 601 on
    for i in range(400):
        line = replace(LINE, brightness=LINE.brightness * (1 - 0.01 * i / 50))
        events += feed(monitor, parts(line, 601 + i, 1, rng))
    assert raised(events) == ["brightness"]
    alert = _first(events, "raised").alert
    assert alert.direction == "down" and alert.detector == "cusum"
    delay = alert.raised_part - 600  # type: ignore[operator]
    assert 20 < delay < 200, delay
    assert alert.started_part is not None and 600 <= alert.started_part < alert.raised_part
    assert alert.message.startswith("image brightness down ")
    assert " % over the last " in alert.message and "usually 0.4" in alert.message
    assert alert.severity == "warning" and alert.baseline == pytest.approx(0.4, rel=0.01)
    # a new lamp: back in control after the chart unwinds and clear_parts (100) clean parts
    back = feed(monitor, parts(LINE, 1001, 400, rng))
    assert cleared(back) == ["brightness"] and raised(back) == []
    clear = _first(back, "cleared")
    assert clear.alert.id == alert.id
    assert 100 <= clear.part_id - 1000 < 200  # type: ignore[operator]
    assert clear.message.startswith("image brightness back in control (raised at part")
    assert monitor.active() == []


def test_a_part_shifted_in_its_fixture_raises_position_only() -> None:
    monitor, rng = warmed(seed=4)
    events = feed(monitor, parts(replace(LINE, pose=(103.0, 80.0, 0.0)), 601, 200, rng))
    assert raised(events) == ["pose_x"]
    alert = _first(events, "raised").alert
    assert alert.direction == "up" and alert.raised_part - 600 < 15  # type: ignore[operator]
    # the CUSUM's estimate of the new mean (Montgomery eq. 9.5), from a few parts
    assert alert.value is not None and 101.5 < alert.value < 104.5
    assert alert.message.startswith("part position x up ")
    assert " px over the last " in alert.message


def test_a_defect_rate_stepping_from_2_to_10_percent_raises_the_anomaly_rate_only() -> None:
    monitor, rng = warmed(seed=5)
    events = feed(monitor, parts(replace(LINE, defect_rate=0.10), 601, 800, rng))
    assert raised(events) == ["anomaly_rate"]
    alert = _first(events, "raised").alert
    assert alert.detector == "bernoulli" and alert.raised_part - 600 < 400  # type: ignore[operator]
    assert alert.message.startswith("anomaly rejects up from ")
    assert alert.value is not None and alert.value > 0.06


def test_a_burst_of_failed_grabs_raises_the_camera_rate() -> None:
    monitor, rng = warmed(seed=6)
    events = feed(monitor, [camera_fault(601 + i) for i in range(6)])
    events += feed(monitor, parts(LINE, 607, 50, rng))
    assert raised(events) == ["camera_rate"]
    assert _first(events, "raised").alert.severity == "critical"


def test_one_wild_part_raises_nothing_a_persistent_shift_does() -> None:
    # A part scored near zero is −40 σ on the log scale: winsorised to −4 σ (Hawkins 1993).
    monitor, rng = warmed(seed=19)
    payloads = list(parts(LINE, 601, 100, rng))
    payloads[10]["score"] = 1e-4
    payloads[11]["score"] = 1e-4
    assert feed(monitor, payloads) == []
    events = feed(monitor, parts(replace(LINE, score=0.6), 701, 100, rng))
    assert raised(events) == ["score"]


def test_an_alert_does_not_flap_while_the_metric_hovers_at_its_limit() -> None:
    monitor, rng = warmed(seed=7, clear_parts=50)
    events = feed(monitor, parts(replace(LINE, pose=(104.0, 80.0, 0.0)), 601, 50, rng))
    assert raised(events) == ["pose_x"]
    # in and out of control every 20 parts: never 50 clean parts in a row, so no clear
    for block in range(20):
        x = 104.0 if block % 2 else 100.0
        events += feed(
            monitor, parts(replace(LINE, pose=(x, 80.0, 0.0)), 651 + 20 * block, 20, rng)
        )
    assert cleared(events) == [] and raised(events) == ["pose_x"]
    events += feed(monitor, parts(LINE, 1051, 200, rng))
    assert cleared(events) == ["pose_x"]


def test_a_metric_raises_at_most_once_per_min_interval() -> None:
    monitor, rng = warmed(seed=8, min_interval_s=60.0, clear_parts=20)
    shifted = replace(LINE, pose=(104.0, 80.0, 0.0))
    events = feed(monitor, parts(shifted, 601, 30, rng))
    events += feed(monitor, parts(LINE, 631, 100, rng))  # cleared
    assert raised(events) == ["pose_x"] and cleared(events) == ["pose_x"]
    first = _first(events, "raised").alert.raised_part
    again = feed(monitor, parts(shifted, 731, 1000, rng))  # 100 s of parts, shifted again
    assert raised(again) == ["pose_x"]
    second = _first(again, "raised").alert.raised_part
    assert (second - first) * PERIOD_S >= 60.0  # type: ignore[operator]
    assert monitor.snapshot()["held"] > 0  # the parts that signalled while it was held back


def test_the_state_survives_a_restart_and_the_active_alert_with_it(tmp_path: Path) -> None:
    monitor, rng = warmed(seed=9)
    feed(monitor, parts(replace(LINE, pose=(104.0, 80.0, 0.0)), 601, 60, rng))
    [alert] = monitor.active()
    path = tmp_path / "monitor-state.json"
    save_state(path, monitor.state())
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind

    again = Monitor(config(), engine="tiny@0.1.0#abc", deadline_ms=500)
    state = load_state(path)
    assert state is not None and again.restore(state) == []
    assert again.active() == [alert]
    assert again.snapshot()["warmup_done"] is True  # no second warm-up
    before, after = monitor.snapshot()["metrics"], again.snapshot()["metrics"]
    assert after["brightness"]["baseline"] == before["brightness"]["baseline"]
    assert after["pose_x"]["statistic"] == before["pose_x"]["statistic"]
    # and it carries on: the cause removed, it clears
    assert cleared(feed(again, parts(LINE, 661, 300, rng))) == ["pose_x"]


def test_another_engine_starts_afresh_and_withdraws_the_old_alerts(tmp_path: Path) -> None:
    monitor, rng = warmed(seed=10)
    feed(monitor, parts(replace(LINE, pose=(104.0, 80.0, 0.0)), 601, 60, rng))
    [alert] = monitor.active()
    other = Monitor(config(), engine="tiny@0.2.0#def", deadline_ms=500)
    [withdrawn] = other.restore(monitor.state())
    assert withdrawn.kind == "cleared" and withdrawn.alert.id == alert.id
    assert "withdrawn: baselines reset: engine tiny@0.2.0#def" in withdrawn.message
    assert other.active() == [] and other.snapshot()["warmup_done"] is False
    # a hot swap does the same
    [swapped] = monitor.reset("tiny@0.3.0#123")
    assert swapped.alert.id == alert.id and monitor.active() == []
    assert monitor.snapshot()["engine"] == "tiny@0.3.0#123"


def test_an_unreadable_state_file_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "monitor-state.json"
    path.write_text('{"version": 1, "engine": ')
    with caplog.at_level(logging.WARNING):
        assert load_state(path) is None
    assert (tmp_path / "monitor-state.json.unreadable").is_file() and not path.exists()
    assert "unreadable" in caplog.text


def test_a_damaged_tracker_state_restarts_only_that_tracker() -> None:
    monitor, _ = warmed(seed=11)
    state = monitor.state()
    state["trackers"]["brightness"]["baseline"] = {"source": "warmup", "parts": 1, "mean": "x"}
    again = Monitor(config(), engine="tiny@0.1.0#abc", deadline_ms=500)
    again.restore(state)
    metrics = again.snapshot()["metrics"]
    assert metrics["brightness"]["state"] == "warmup"
    assert metrics["contrast"]["state"] == "in_control"


def test_manifest_baselines_need_no_warm_up(caplog: pytest.LogCaptureFixture) -> None:
    figures = {
        "good_images": 40,
        "good_brightness_mean": 0.4,
        "good_brightness_std": 0.004,
        "good_pose_x_mean": 100.0,
        "good_pose_x_std": 1.0,
    }
    with caplog.at_level(logging.INFO, logger="edge.monitor"):
        monitor = Monitor(config(baseline="manifest"), engine="e", figures=figures)
    assert "manifest has no baseline for score, confidence, pose_y" in caplog.text
    metrics = monitor.snapshot()["metrics"]
    assert metrics["brightness"]["state"] == "in_control"
    assert metrics["brightness"]["baseline"] == pytest.approx(0.4, rel=1e-3)
    assert metrics["pose_y"]["state"] == "warmup"
    rng = np.random.default_rng(12)
    events = feed(monitor, parts(replace(LINE, brightness=0.36), 1, 100, rng))
    assert raised(events) == ["brightness"]  # found while the others still warm up


def test_levels_from_station_samples_raise_and_clear() -> None:
    monitor, _ = warmed(seed=13)
    t = 600 * PERIOD_S

    def sample(dt: float, **kw: Any) -> list[AlertEvent]:
        return monitor.sample(StationSample(time_s=t + dt, time="now", **kw))

    assert sample(0.5, outbox_depth=20, camera_connected=True, camera_outages=0) == []
    events = sample(1, outbox_depth=800, camera_connected=True, camera_outages=0)
    assert raised(events) == ["outbox_depth"]
    assert events[0].message == (
        "MQTT outbox holds 800 messages (more than 500): results are not reaching the broker"
    )
    assert sample(2, outbox_depth=100) == []  # hysteresis: above low (50)
    assert cleared(sample(3, outbox_depth=10)) == ["outbox_depth"]

    assert sample(4, camera_connected=False, camera_outages=1) == []
    events = sample(7, camera_connected=False, camera_outages=1)
    assert raised(events) == ["camera_lost"] and events[0].message == "camera disconnected for 3 s"
    assert cleared(sample(8, camera_connected=True, camera_outages=1)) == ["camera_lost"]
    sample(9, camera_outages=3)
    events = sample(10, camera_outages=4)
    assert raised(events) == ["camera_reconnects"]
    assert events[0].message == "camera lost 4 times in the last 600 s"


def test_an_idle_line_is_told_apart_from_a_lost_camera() -> None:
    monitor, rng = warmed(seed=14)
    last = 600 * PERIOD_S
    quiet = monitor.sample(StationSample(time_s=last + 200, camera_connected=False))
    assert raised(quiet) == ["camera_lost"] or raised(quiet) == []  # never "line stopped"
    events = monitor.sample(StationSample(time_s=last + 300, camera_connected=True))
    assert "line_idle" in raised(events)
    idle = next(e for e in events if e.alert.metric == "line_idle")
    assert idle.message == "no part for 300 s with the camera connected: the line has stopped"
    back = feed(monitor, parts(LINE, 3601, 1, rng))
    assert cleared(back) == ["line_idle"]


def test_latency_p99_against_the_deadline() -> None:
    monitor, rng = warmed(seed=15)
    events = feed(monitor, parts(replace(LINE, latency_ms=450.0), 601, 400, rng))
    assert raised(events) == ["latency_p99"]
    alert = _first(events, "raised").alert
    assert alert.severity == "critical" and alert.baseline == 400.0  # 0.8 × 500 ms
    assert "% of the 500 ms deadline" in alert.message


def test_ok_scores_creeping_towards_the_threshold() -> None:
    monitor, rng = warmed(seed=16)
    events = feed(monitor, parts(replace(LINE, score=1.2), 601, 600, rng))
    assert set(raised(events)) == {"score", "score_p99"}
    p99 = next(e.alert for e in events if e.alert.metric == "score_p99")
    assert p99.message.startswith("OK parts' score p99 ")
    assert "towards the threshold 1.6" in p99.message


def test_the_payloads_for_scada() -> None:
    monitor, rng = warmed(seed=17)
    events = feed(monitor, parts(replace(LINE, pose=(104.0, 80.0, 0.0)), 601, 60, rng))
    payload = alert_payload(events[0], "cam-1")
    assert payload["schema"] == "partsight.alert/1" and payload["event"] == "raised"
    assert payload["alert"]["metric"] == "pose_x" and payload["message"] == events[0].message
    assert set(payload["alert"]) == {
        "id", "metric", "detector", "direction", "severity", "value", "baseline",
        "started_part", "started_time", "raised_part", "raised_time", "message",
    }  # fmt: skip
    assert payload["alert"]["started_time"].endswith("Z")
    active = active_payload(monitor.active(), "cam-1", "2025-01-01T00:00:00Z")
    assert [a["id"] for a in active["active"]] == [events[0].alert.id]
    json.dumps([payload, active], allow_nan=False)


def test_inspect_lines_feed_what_they_have() -> None:
    monitor = Monitor(config(warmup_parts=20), engine=None)
    line = {
        "file": "a.png",
        "engine": "tiny@0.1.0",
        "verdict": "OK",
        "reason": "",
        "score": 1.0,
        "threshold": 1.6,
        "regions": [],
        "latency_ms": {},
        "pose": None,
        "confidence": None,
    }
    for i in range(30):
        monitor.observe(PartObservation.read(line | {"score": 1.0 + 0.01 * (i % 3)}, i + 1))
    metrics = monitor.snapshot()["metrics"]
    assert metrics["score"]["state"] == "in_control"
    assert metrics["brightness"]["state"] == "warmup" and metrics["brightness"]["value"] is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"schema": "partsight.result/1", "verdict": "OK"},
            "not a result payload: missing 'part_id'",
        ),
        ({"schema": "partsight.metrics/1"}, "not a result: schema 'partsight.metrics/1'"),
        ({"verdict": "MAYBE"}, "not a line of partsight inspect: verdict 'MAYBE' is not OK"),
        ({"verdict": "OK", "score": "1.0"}, "not a line of partsight inspect: expected a number"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_unreadable_records_say_why(record: Any, message: str) -> None:
    with pytest.raises(ObservationError) as caught:
        PartObservation.read(record, 1)
    assert str(caught.value).startswith(message)


def test_the_state_does_not_grow_with_the_parts() -> None:
    monitor, rng = warmed(seed=18)
    feed(monitor, parts(LINE, 601, 1000, rng))
    size = len(json.dumps(monitor.state()))
    feed(monitor, parts(LINE, 1601, 5000, rng))
    assert abs(len(json.dumps(monitor.state())) - size) < 200  # digits, not entries
