"""Station topic names and their validation."""

from __future__ import annotations

import pytest

from edge.mqtt.errors import MqttConfigError
from edge.mqtt.topics import Topics


def test_topic_names() -> None:
    t = Topics("plant1", "line-3", "cam A")
    assert t.prefix == "partsight/plant1/line-3/cam A/"
    assert t.status == "partsight/plant1/line-3/cam A/status"
    assert t.result == "partsight/plant1/line-3/cam A/result"
    assert t.alert.endswith("/alert")
    assert t.metrics.endswith("/metrics")
    assert t.engine.endswith("/engine")
    assert t.heatmap.endswith("/heatmap")
    assert t.cmd("reload") == "partsight/plant1/line-3/cam A/cmd/reload"
    assert t.cmd_filter == "partsight/plant1/line-3/cam A/cmd/+"
    assert t.topic("result") == t.result
    assert t.topic("cmd/reload") == t.cmd("reload")


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x\x00y"])
@pytest.mark.parametrize("field", ["site", "line", "station"])
def test_bad_names_are_refused(field: str, bad: str) -> None:
    names = {"site": "s", "line": "l", "station": "st"} | {field: bad}
    with pytest.raises(MqttConfigError, match=field):
        Topics(**names)


@pytest.mark.parametrize("suffix", ["", "a//b", "cmd/+", "#", "result/"])
def test_bad_suffixes_and_commands_are_refused(suffix: str) -> None:
    t = Topics("s", "l", "st")
    with pytest.raises(MqttConfigError):
        t.topic(suffix)
    with pytest.raises(MqttConfigError):
        t.cmd("a/b")
