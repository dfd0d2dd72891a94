"""Topic names for one station: `partsight/<site>/<line>/<station>/<suffix>`.

What goes where (the publisher is told QoS, retain and durability by its caller; these are the
conventions SCADA integrators read about):

| suffix         | QoS | retained | durable | content                                          |
| -------------- | --- | -------- | ------- | ------------------------------------------------ |
| `status`       | 1   | yes      | no      | JSON (status.py): online / degraded / stopped,   |
|                |     |          |         | health of camera, reject, MQTT; will offline     |
| `result`       | 1   | no       | yes     | one JSON result per part (result.schema.json)    |
| `alert`        | 1   | no       | yes     | production-metric alerts (one raise or clear);   |
|                |     |          |         | component changes of state (partsight.health/1)  |
| `alert/active` | 1   | yes      | yes     | every metric alert active now (edge/monitor)     |
| `metrics`      | 0   | no       | no      | periodic counters, health, the monitor snapshot  |
| `engine`       | 1   | yes      | no      | the active engine's name and version             |
| `heatmap`      | 0   | no       | no      | reserved: heatmaps are not published yet         |
| `cmd/<name>`   | -   | -        | -       | commands from SCADA to the station               |
| `cmd/response` | 1   | no       | yes     | the station's answers to commands                |
"""

from __future__ import annotations

from edge.mqtt.errors import MqttConfigError

ROOT = "partsight"

STATUS = "status"
RESULT = "result"
ALERT = "alert"
METRICS = "metrics"
ENGINE = "engine"
HEATMAP = "heatmap"
CMD = "cmd"

# The `state` of the retained `status` payload (status.py).
STATUS_ONLINE = "online"
STATUS_DEGRADED = "degraded"  # running, but a component is down or in error (see its health)
STATUS_OFFLINE = "offline"  # the last will: the broker publishes it when the daemon vanishes
STATUS_STOPPED = "stopped"  # a clean shutdown, so SCADA can tell a stop from a crash

# MQTT wildcards and the level separator would change which topics a name matches; NUL is
# forbidden in MQTT strings altogether.
_FORBIDDEN = frozenset("+#/\x00")


def check_name(kind: str, value: str) -> str:
    """Return `value` if it can be one topic level, else raise MqttConfigError naming `kind`."""
    if not value:
        raise MqttConfigError(f"MQTT {kind} name is empty")
    bad = sorted(_FORBIDDEN.intersection(value))
    if bad:
        raise MqttConfigError(f"MQTT {kind} name {value!r} contains {bad!r} (not allowed: + # /)")
    return value


class Topics:
    """The topic names of one station."""

    def __init__(self, site: str, line: str, station: str, root: str = ROOT) -> None:
        self.site = check_name("site", site)
        self.line = check_name("line", line)
        self.station = check_name("station", station)
        self.prefix = f"{check_name('root', root)}/{site}/{line}/{station}/"

    def topic(self, suffix: str) -> str:
        """The full topic for `suffix` (one or more levels, e.g. "result" or "cmd/reload")."""
        for level in suffix.split("/"):
            check_name("topic level", level)
        return self.prefix + suffix

    @property
    def status(self) -> str:
        return self.prefix + STATUS

    @property
    def result(self) -> str:
        return self.prefix + RESULT

    @property
    def alert(self) -> str:
        return self.prefix + ALERT

    @property
    def metrics(self) -> str:
        return self.prefix + METRICS

    @property
    def engine(self) -> str:
        return self.prefix + ENGINE

    @property
    def heatmap(self) -> str:
        return self.prefix + HEATMAP

    def cmd(self, name: str) -> str:
        """The topic SCADA publishes command `name` to."""
        return self.prefix + CMD + "/" + check_name("command", name)

    @property
    def cmd_filter(self) -> str:
        """The subscription filter matching every command of this station."""
        return self.prefix + CMD + "/+"

    def __repr__(self) -> str:
        return f"Topics({self.prefix!r})"
