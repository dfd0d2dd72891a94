"""The verdict and its MQTT result payload: exactly what result.schema.json describes."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import pytest

from edge.daemon.payload import engine_payload, result_payload, utc_iso
from edge.daemon.verdict import CameraInfo, EngineInfo, Verdict
from edge.mqtt import RESULT_SCHEMA_ID, RESULT_SCHEMA_PATH, encode_payload
from edge.regions import Region

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")

WALL = 1_741_944_413.589793  # 2025-03-14T09:26:53.589793Z


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(RESULT_SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def verdict(**changes: Any) -> Verdict:
    values: dict[str, Any] = {
        "part_id": 42,
        "verdict": "NOK",
        "reason": "anomaly",
        "trigger_ns": 5_000_000_000,
        "trigger_wall": WALL,
        "verdict_ns": 5_031_000_000,
        "verdict_wall": WALL + 0.031,
        "score": 7.5,
        "threshold": 5.0,
        "regions": (Region(x=10, y=12, width=5, height=4, peak=2.5, area_px=17),),
        "latency_ms": {"grab": 2.0, "queue": 0.1, "inference": 3.0, "total": 31.0},
        "camera": CameraInfo(frame_counter=7, exposure_us=850.0, gain_db=0.0),
        "engine": EngineInfo("bracket", "1.2.0", "ab" * 32, "onnxruntime", "fp32"),
    }
    values.update(changes)
    return Verdict(**values)


def roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode_payload(payload))  # what goes on the wire
    return decoded


def test_a_judged_part_matches_the_schema(validator: Any) -> None:
    payload = roundtrip(result_payload(verdict(), "housing-top"))
    validator.validate(payload)
    assert payload["schema"] == RESULT_SCHEMA_ID
    assert payload["station"] == "housing-top"
    assert payload["part_id"] == 42
    assert payload["trigger_time"] == "2025-03-14T09:26:53.589793Z"
    assert payload["trigger_monotonic_ns"] == 5_000_000_000
    assert payload["verdict"] == "NOK" and payload["reason"] == "anomaly"
    assert payload["score"] == 7.5 and payload["threshold"] == 5.0
    assert payload["regions"] == [
        {"x": 10, "y": 12, "width": 5, "height": 4, "peak": 2.5, "area_px": 17}
    ]
    assert payload["latency_ms"]["total"] == 31.0
    assert payload["engine"] == {"name": "bracket", "version": "1.2.0", "model_sha256": "ab" * 32}
    assert payload["camera"] == {"frame_counter": 7, "exposure_us": 850.0, "gain_db": 0.0}
    assert payload["class"] is None and payload["class_probability"] is None
    assert set(payload) == set(json.loads(RESULT_SCHEMA_PATH.read_text())["required"])


@pytest.mark.parametrize(
    "changes",
    [
        {"verdict": "OK", "reason": "", "regions": ()},
        {
            "verdict": "ERROR",
            "reason": "camera",
            "score": None,
            "threshold": None,
            "regions": (),
            "camera": None,
            "engine": None,
            "latency_ms": {"total": 0.0},
        },
        {
            "verdict": "NOK",
            "reason": "overload",
            "score": None,
            "threshold": None,
            "regions": (),
            "engine": None,
        },
        {"verdict": "NOK", "reason": "timeout"},
        {"verdict": "NOK", "reason": "image", "score": None, "threshold": None, "regions": ()},
        {"verdict": "ERROR", "reason": "inference", "score": None, "regions": ()},
        {"verdict": "NOK", "reason": "registration", "score": None, "confidence": 0.2},
        {
            "defect_class": "nuisance",
            "class_probability": 0.8,
            "verdict": "OK",
            "reason": "nuisance",
        },
    ],
)
def test_every_kind_of_verdict_matches_the_schema(validator: Any, changes: dict[str, Any]) -> None:
    validator.validate(roundtrip(result_payload(verdict(**changes), "st")))


def test_unknown_camera_metadata_is_null_not_partial(validator: Any) -> None:
    # A replayed frame has a counter but no exposure or gain: the schema wants all or nothing.
    replay = CameraInfo(frame_counter=3, exposure_us=None, gain_db=None)
    payload = roundtrip(result_payload(verdict(camera=replay), "st"))
    validator.validate(payload)
    assert payload["camera"] is None


def test_numbers_json_cannot_carry_are_null(validator: Any) -> None:
    payload = roundtrip(
        result_payload(
            verdict(score=math.nan, threshold=math.inf, latency_ms={"total": math.nan, "grab": 1}),
            "st",
        )
    )
    validator.validate(payload)
    assert payload["score"] is None and payload["threshold"] is None
    assert payload["latency_ms"] == {"grab": 1}


def test_a_rejected_part_always_has_a_reason() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        verdict(verdict="NOK", reason="")
    with pytest.raises(ValueError, match="verdict must be one of"):
        verdict(verdict="MAYBE")


def test_times_are_utc_iso() -> None:
    stamp = utc_iso(WALL)
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.tzinfo == timezone.utc and abs(parsed.timestamp() - WALL) < 1e-6


def test_total_latency_and_rejected() -> None:
    v = verdict()
    assert v.total_ms == pytest.approx(31.0) and v.rejected
    assert not verdict(verdict="OK", reason="").rejected


def test_engine_payload() -> None:
    payload = engine_payload(EngineInfo("bracket", "1.2.0", "ab" * 32, "tensorrt", "fp16"), 5.0)
    assert payload == {
        "schema": "partsight.engine/1",
        "name": "bracket",
        "version": "1.2.0",
        "model_sha256": "ab" * 32,
        "threshold": 5.0,
        "backend": "tensorrt",
        "precision": "fp16",
        "signer": None,
        "active_since": None,
        "active_since_monotonic_ns": None,
    }
    swapped = engine_payload(
        EngineInfo("bracket", "1.3.0", "cd" * 32, "tensorrt", "fp16"),
        4.0,
        signer="ef" * 32,
        since_ns=123_456_789,
        since_wall=1_700_000_000.5,
    )
    assert swapped["signer"] == "ef" * 32
    assert swapped["active_since"] == "2023-11-14T22:13:20.500000Z"
    assert swapped["active_since_monotonic_ns"] == 123_456_789
