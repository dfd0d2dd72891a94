"""The result payload's JSON Schema accepts what the daemon sends and refuses what it must not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edge.mqtt import RESULT_SCHEMA_ID, RESULT_SCHEMA_PATH, encode_payload

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")

NOK: dict[str, Any] = {
    "schema": "partsight.result/1",
    "station": "cam-1",
    "part_id": 123456,
    "trigger_time": "2025-03-14T09:26:53.589793Z",
    "trigger_monotonic_ns": 987654321012,
    "verdict_time": "2025-03-14T09:26:53.631000+00:00",
    "verdict": "NOK",
    "reason": "anomaly",
    "score": 0.0731,
    "threshold": 0.05,
    "class": "defect",
    "class_probability": 0.93,
    "regions": [{"x": 120, "y": 44, "width": 18, "height": 9, "peak": 0.41, "area_px": 97}],
    "latency_ms": {"grab": 3.1, "register": 7.9, "infer": 11.4, "classify": 0.8, "total": 24.2},
    "engine": {"name": "bracket-a", "version": "1.4.0", "model_sha256": "0f" * 32},
    "camera": {"frame_counter": 88812, "exposure_us": 850.0, "gain_db": 0.0},
    "confidence": 0.97,
    "pose": {"x": 512.25, "y": 384.5, "angle_deg": -1.25},
    "frame": {"brightness": 0.41, "contrast": 0.37, "focus": 2.7},
}

OK = NOK | {
    "verdict": "OK",
    "reason": "",
    "score": 0.012,
    "class": None,
    "class_probability": None,
    "regions": [],
}
NUISANCE = NOK | {"verdict": "OK", "reason": "nuisance", "class": "nuisance"}
CAMERA_FAULT = NOK | {
    "verdict": "ERROR",
    "reason": "camera",
    "score": None,
    "threshold": None,
    "class": None,
    "class_probability": None,
    "regions": [],
    "latency_ms": {"total": 500.0},
    "engine": None,
    "camera": None,
    "confidence": None,
    "pose": None,
    "frame": None,
}


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(RESULT_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == RESULT_SCHEMA_ID
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("payload", [NOK, OK, NUISANCE, CAMERA_FAULT], ids=lambda p: p["reason"])
def test_valid_results(validator: Any, payload: dict[str, Any]) -> None:
    # As sent: through the publisher's encoder and back.
    sent = json.loads(encode_payload(payload))
    assert list(validator.iter_errors(sent)) == []


def _without(key: str) -> dict[str, Any]:
    payload = copy.deepcopy(NOK)
    del payload[key]
    return payload


INVALID = {
    "missing part_id": _without("part_id"),
    "missing engine": _without("engine"),
    "unknown field": NOK | {"colour": "red"},
    "old schema": NOK | {"schema": "partsight.result/0"},
    "negative part_id": NOK | {"part_id": -1},
    "string part_id": NOK | {"part_id": "12"},
    "bad verdict": NOK | {"verdict": "MAYBE"},
    "NOK without reason": NOK | {"reason": ""},
    "local time": NOK | {"trigger_time": "2025-03-14T10:26:53+01:00"},
    "no time zone": NOK | {"verdict_time": "2025-03-14T09:26:53"},
    "bad class": NOK | {"class": "scratch"},
    "probability above 1": NOK | {"class_probability": 1.5},
    "region without area": NOK
    | {"regions": [{"x": 1, "y": 2, "width": 3, "height": 4, "peak": 1}]},
    "zero-width region": NOK
    | {"regions": [{"x": 1, "y": 2, "width": 0, "height": 4, "peak": 1, "area_px": 0}]},
    "negative latency": NOK | {"latency_ms": {"infer": -1.0}},
    "engine without version": NOK | {"engine": {"name": "x", "model_sha256": "0f" * 32}},
    "engine without model hash": NOK | {"engine": {"name": "x", "version": "1.0.0"}},
    "station with slash": NOK | {"station": "a/b"},
    "missing frame": _without("frame"),
    "confidence above 1": NOK | {"confidence": 1.2},
    "pose without angle": NOK | {"pose": {"x": 1.0, "y": 2.0}},
    "negative brightness": NOK | {"frame": {"brightness": -0.1, "contrast": 0.3, "focus": 1.0}},
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_results(validator: Any, name: str) -> None:
    assert list(validator.iter_errors(INVALID[name])), f"{name} was accepted"
