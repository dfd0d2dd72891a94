"""The station's health model: what counts as a change, which changes are alerts, and how the
states read on the STATUS line."""

from __future__ import annotations

import logging

import pytest

from edge.daemon.counters import PipelineCounters
from edge.daemon.health import Change, StationHealth
from edge.daemon.report import status_line
from hw.health import Health


class Readings:
    """What each component says when read; the test sets it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.of: dict[str, Health] = {}

    def read(self, name: str) -> Health:
        return self.of[name]

    def health(self) -> StationHealth:
        return StationHealth(
            {n: (lambda n=n: self.read(n)) for n in self.of}, clock=lambda: self.now
        )


def h(state: str = "up", **kw: object) -> Health:
    return Health(state=state, since=1.0, **kw)  # type: ignore[arg-type]


def test_changes_are_new_states_new_details_and_new_losses_at_most_once_a_second() -> None:
    r = Readings()
    r.of = {"camera": h(), "reject": h()}
    station = r.health()
    assert [(c.component, c.before) for c in station.poll()] == [("camera", None), ("reject", None)]
    assert station.poll() == []
    r.of["reject"] = h("down", detail="no answer", retry_in_s=0.5, lost=1)
    (change,) = station.poll()
    assert (change.before, change.after.state) == (h(), "down")
    r.of["reject"] = h("down", detail="no answer", retry_in_s=0.2, lost=2)
    r.now += 0.5
    assert station.poll() == []  # a new loss within the second after the last report
    r.now += 0.6
    assert [c.after.lost for c in station.poll()] == [2]
    r.of["reject"] = h("down", detail="connection refused", lost=2)
    assert [c.after.detail for c in station.poll()] == ["connection refused"]
    r.of["reject"] = h(lost=2)
    assert [c.after.state for c in station.poll()] == ["up"]


@pytest.mark.parametrize(
    ("component", "before", "after", "alert"),
    [
        ("camera", None, h(), False),  # starting up fine is no news
        ("camera", None, h("down"), True),  # starting without a camera is
        ("camera", h(), h("down"), True),
        ("reject", h("down", lost=1), h(lost=3), True),
        ("mqtt", None, h("down"), False),  # not connected yet at the first reading
        ("mqtt", h(), h("down"), False),  # an alert would travel over the very link
        ("mqtt", h("down"), h(), False),
        ("mqtt", h(), h("error"), True),  # a take-over, a twin station
        ("mqtt", h("error"), h(), True),
        ("mqtt", h(), h(lost=1), True),  # a message set aside
    ],
)
def test_which_changes_are_alerts(
    component: str, before: Health | None, after: Health, alert: bool
) -> None:
    assert Change(component, before, after).worth_an_alert is alert


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = Readings()
    r.of = {"camera": h()}
    station = r.health()
    heard: list[str] = []

    def broken(change: Change) -> None:
        raise RuntimeError("bug")

    station.subscribe(broken)
    station.subscribe(lambda c: heard.append(c.component))
    with caplog.at_level(logging.ERROR):
        station.tell(station.poll())
    assert heard == ["camera"] and "a health subscriber failed on camera" in caplog.text


def test_the_status_line_names_each_component_and_what_is_wrong() -> None:
    snap = PipelineCounters().snapshot()
    health = {
        "camera": h(),
        "reject": h("down", detail="modbus 10.0.0.5:502 unit 1: no answer", retry_in_s=1.5, lost=3),
        "mqtt": h("error", detail="client id 'x' is in use by another client"),
    }
    assert status_line(snap, 0.0, health) == (
        "0 parts (OK 0, NOK 0, ERROR 0), 0.0/s, p99 -, overload 0; camera up, reject DOWN "
        "(modbus 10.0.0.5:502 unit 1: no answer; retry in 1.5 s; 3 lost), mqtt ERROR (client "
        "id 'x' is in use by another client)"
    )
    assert status_line(snap, 0.0, {"reject": h(lost=2)}).endswith("; reject up (2 lost)")
