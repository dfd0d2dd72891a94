"""The MQTT publisher: drains the outbox to the broker in order, and never lets the network
hold up the caller.

Threads:
- callers (the pipeline's output worker, the metrics monitor) call `publish`. A durable message
  is only written to the outbox (an fsync, no network) and the sender is woken; a non-durable
  one is handed to paho's network thread, or dropped and counted while offline.
- the sender thread (`mqtt-sender`) owns the connection: it connects with back-off and jitter,
  publishes its status, sends outbox rows in id order with at most `max_inflight` unacknowledged,
  deletes a row when its PUBACK arrives, and reconnects when the connection drops.
- paho's network thread (one per connection) does the socket I/O and runs our callbacks. The
  callbacks only record what happened and wake the sender: paho calls on_publish holding its own
  message lock, so taking ours there could deadlock against a sender inside `client.publish`.
  Likewise the handlers of subscribed command topics (`subscribe`) only hand the payload on.

Each connection uses a fresh paho client. Rows sent on a connection that dropped before their
PUBACK are sent again on the next one, oldest first, so what a subscriber sees is in order once
duplicates are dropped, and a broker outage adds at most `max_inflight` duplicates.

What the broker will never take does not block what comes behind it: a row bigger than the
broker's largest packet (announced in MQTT 5's CONNACK, or configured as `max_packet_size`) is
never sent, and a row the broker refuses for good (an MQTT 5 PUBACK such as "Not authorized") is
not deleted: both are *set aside* in the outbox (kept on disk, counted, logged, shown in health()).

The station's own state goes on the retained `status` topic (status.py): the daemon hands over
its components' health (set_health), the publisher adds its own. Two kinds of identity clash are
recognised and reported as an error there and in health():
- a take-over: another client uses our client id, so the broker keeps closing our connection
  right after accepting it (MQTT 5's "Session taken over", or 3 such closes in a row);
- a twin station: another client id publishes an online status on our own status topic (the
  same site, line and station names), whose results consumers would merge with ours.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config.mqtt import MqttConfig
from edge.config.station import StationConfig
from edge.mqtt.backoff import Backoff
from edge.mqtt.client import (
    PROTOCOLS,
    ClientFactory,
    PahoNoise,
    paho_client,
    publish_packet_size,
    tls_context,
)
from edge.mqtt.client_id import MACHINE_ID, client_id
from edge.mqtt.outbox import Message, Outbox
from edge.mqtt.status import running_state, status_payload
from edge.mqtt.topics import (
    STATUS_DEGRADED,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_STOPPED,
    Topics,
)
from hw.health import RECENT, Health

log = logging.getLogger(__name__)
paho_log = logging.getLogger(__name__ + ".paho")
paho_log.addFilter(PahoNoise())

Payload: TypeAlias = Mapping[str, Any] | bytes | str

# The sender also wakes this often with nothing to do, as a safety net against a missed wake-up.
_IDLE_WAKE_S = 1.0
# After the flush deadline: how long "stopped" may take to be acknowledged, and how long the
# broker gets to see our DISCONNECT before the socket is shut.
_STATUS_GRACE_S = 1.0
_CLOSE_GRACE_S = 1.0
# paho's own in-flight limit sits above ours, leaving room for status and non-durable QoS 1
# messages so that they never make paho queue a durable one.
_PAHO_INFLIGHT_HEADROOM = 16
# A take-over: this many connections in a row closed by the broker soon after it accepted them.
_TAKEOVER_CLOSES = 3
_SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code
# PUBACK reason codes that say "not now" rather than "never": reconnect and send again.
_TRANSIENT_REFUSALS = frozenset({0x91, 0x97})  # packet identifier in use, quota exceeded


@dataclass(frozen=True)
class PublisherCounters:
    """A snapshot for the metrics topic. `sent` counts every durable PUBLISH handed to the
    broker, `resent` the part of it that repeated a message after a reconnect."""

    sent: int
    acked: int
    resent: int
    dropped_nondurable: int
    reconnects: int
    connect_failures: int
    inflight: int
    connected: bool
    set_aside: int  # durable messages the broker will never take, kept aside in the outbox


def encode_payload(payload: Payload) -> bytes:
    """JSON for a mapping (compact, UTF-8, NaN refused since it is not JSON), bytes as they are."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


class _Session:
    """One broker connection. paho's callbacks get it as userdata, so a late callback from an
    old connection can never touch the current one."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.connack = threading.Event()
        self.closed = threading.Event()
        self.accepted = False
        self.refusal = ""
        self.disconnecting = False
        self.acked_mids: deque[int] = deque()  # appended by paho's thread, drained by the sender
        # (mid, reason, code) of PUBACKs that refuse a message (MQTT 5); paho's thread appends
        self.refused: deque[tuple[int, str, int]] = deque()
        self.inflight: dict[int, int] = {}  # mid -> outbox id; sender thread only
        self.last_sent_id = 0
        self.broker_max_packet: int | None = None  # MQTT 5 CONNACK Maximum Packet Size
        self.server_reason: tuple[str, int] | None = None  # a DISCONNECT the broker sent
        self.up_since = 0.0

    @property
    def alive(self) -> bool:
        return self.accepted and not self.closed.is_set()


@dataclass(frozen=True)
class _Ended:
    """How a connection ended, for recognising a take-over."""

    accepted: bool
    up_s: float
    by_us: bool
    server_code: int | None  # the broker's DISCONNECT reason code (MQTT 5), if it sent one


class MqttPublisher:
    """Publishes results, alerts, metrics and status for one station. `start()`, then
    `publish(...)` from any thread, then `stop()`. The outbox is the caller's to open and close."""

    def __init__(
        self,
        config: MqttConfig,
        station: StationConfig,
        outbox: Outbox,
        *,
        client_factory: ClientFactory = paho_client,
        backoff: Backoff | None = None,
        machine_id: Path = MACHINE_ID,
    ) -> None:
        """Builds the TLS context and settles the client id now (the default one may create
        its suffix file in the state directory), so that a bad setting fails at start-up
        (MqttConfigError) rather than at every reconnect. The password is the one the
        configuration read at load time."""
        self.config = config
        self.station = station
        self.topics = Topics(station.site, station.line, station.station)
        self.client_id = client_id(config, station, machine_id=machine_id).value
        self._outbox = outbox
        self._client_factory = client_factory
        self._protocol = PROTOCOLS[config.protocol]
        password = config.password
        self._password = None if password is None else password.get_secret_value()
        self._tls = (
            tls_context(config.tls_ca_file, config.tls_cert_file, config.tls_key_file)
            if config.tls
            else None
        )
        self._backoff = backoff or Backoff(config.reconnect_min_s, config.reconnect_max_s)
        # A connection closed this soon after it was accepted may have been taken over.
        self._quick_close_s = 2 * config.reconnect_max_s + config.connect_timeout_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the fields below; never held while calling paho
        self._session: _Session | None = None
        self._connecting: _Session | None = None
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._sent = 0
        self._acked = 0
        self._resent = 0
        self._dropped = 0
        self._connections = 0
        self._connect_failures = 0
        self._highest_sent_id = 0
        aside = outbox.set_aside_ids()
        self._set_aside = len(aside)
        self._recent_aside: deque[int] = deque(aside[-RECENT:], maxlen=RECENT)
        # health(): the link, and the identity clashes
        self._since = time.time()
        self._down_why = "not connected yet"
        self._retry_at: float | None = None
        self._quick_closes = 0
        self._takeover: str | None = None  # why we think another client has our client id
        self._takeover_since = 0.0
        self._twin: str | None = None  # the client id of another station with our names
        self._twin_since = 0.0
        self._components: dict[str, Health] = {}
        self._status_due = False  # the status changed: the sender publishes it again

    # -- the callers' side ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("MqttPublisher already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="mqtt-sender", daemon=True)
        self._thread.start()

    def subscribe(self, topic_suffix: str, handler: Callable[[bytes], None]) -> None:
        """Hand every message on this station's `topic_suffix` (e.g. "cmd/engine/activate") to
        `handler`, on paho's network thread: it must only queue the payload. Subscribed (QoS 1)
        on every connection; the session is clean, so a command sent while the station was
        offline is not delivered later, and the broker's retained copy of a command, which comes
        with every new subscription, is ignored (it would run again at every reconnect).
        Call before start()."""
        if self._thread is not None:
            raise RuntimeError("subscribe before start()")
        self._handlers[self.topics.topic(topic_suffix)] = handler

    def publish(
        self,
        topic_suffix: str,
        payload: Payload,
        *,
        qos: int = 1,
        retain: bool = False,
        durable: bool = True,
    ) -> int | None:
        """Publish on this station's `topic_suffix` (e.g. "result"). Never waits on the network.

        durable: stored in the outbox (on disk when this returns) and sent until the broker
        acknowledges it; needs QoS 1 or 2. Returns the outbox id. Raises OutboxError if it
        cannot be stored: the caller must not assume it was sent.

        not durable: sent if connected, else dropped and counted (and so is one bigger than
        the broker takes). A retained non-durable message is also remembered and sent again
        on every reconnect, so state topics such as `engine` are right even after a broker
        restart that lost its retained messages. Returns None.
        """
        topic = self.topics.topic(topic_suffix)
        data = encode_payload(payload)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        if durable:
            if qos == 0:
                raise ValueError("a durable message needs QoS 1 or 2 (QoS 0 is never acknowledged)")
            row_id = self._outbox.put(topic, data, qos, retain)
            self._wake.set()
            return row_id
        with self._lock:
            if retain:
                self._retained[topic] = (data, qos)
            session = self._session
        if session is None or not session.alive:
            if not retain:  # a retained one is remembered and goes out on connect
                self._count_drop()
            return None
        limit = self._packet_limit(session)
        size = publish_packet_size(topic, len(data), qos, self._protocol)
        if limit is not None and size > limit:
            self._count_drop()
            log.warning(
                "MQTT: %s not sent: %d bytes, more than the broker takes (%d)", topic, size, limit
            )
            return None
        # paho only queues the packet here; its network thread writes it.
        info = session.client.publish(topic, data, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._count_drop()
        return None

    def set_health(self, components: Mapping[str, Health]) -> None:
        """The station's other components (camera, reject output): the retained status is
        published again with them, at once if connected, else on the next connection."""
        with self._lock:
            self._components = dict(components)
            self._status_due = True
        self._wake.set()

    def health(self) -> Health:
        """up (connected), down (reconnecting; retry_in_s), or error (a take-over, or a twin
        station); `lost` counts the messages set aside in the outbox."""
        with self._lock:
            return self._health()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Send what can be sent within `flush_timeout_s`, publish "stopped", disconnect cleanly
        (so the broker does not publish the "offline" will). Whatever is still unacknowledged
        stays in the outbox for the next start."""
        thread = self._thread
        if thread is None:
            return
        self._flush_deadline = time.monotonic() + max(flush_timeout_s, 0.0)
        self._stopping.set()
        self._wake.set()
        with self._lock:  # cut short a wait for CONNACK (see _await_connack)
            if self._connecting is not None:
                self._connecting.connack.set()
        limit = flush_timeout_s + _STATUS_GRACE_S + 2 * _CLOSE_GRACE_S
        thread.join(limit + self.config.connect_timeout_s * 2)
        if thread.is_alive():
            log.error("MQTT sender did not stop within %.1f s; abandoning it", limit)
        self._thread = None
        log.info("MQTT publisher stopped: %s", self.counters())

    @property
    def connected(self) -> bool:
        session = self._session
        return session is not None and session.alive

    def counters(self) -> PublisherCounters:
        with self._lock:
            session = self._session
            return PublisherCounters(
                sent=self._sent,
                acked=self._acked,
                resent=self._resent,
                dropped_nondurable=self._dropped,
                reconnects=max(self._connections - 1, 0),
                connect_failures=self._connect_failures,
                inflight=len(session.inflight) if session is not None else 0,
                connected=session is not None and session.alive,
                set_aside=self._set_aside,
            )

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1

    def _health(self) -> Health:  # under the lock
        session = self._session
        lost, recent = self._set_aside, tuple(self._recent_aside)
        if self._takeover is not None or self._twin is not None:
            detail = self._takeover or (
                f"another station publishes under the same names as client {self._twin!r}: "
                "consumers merge its parts with ours; give one station other names"
            )
            since = self._takeover_since if self._takeover else self._twin_since
            return Health(state="error", since=since, detail=detail, lost=lost, recent=recent)
        if session is not None and session.alive:
            return Health(state="up", since=self._since, lost=lost, recent=recent)
        retry = None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
        return Health(
            state="down",
            since=self._since,
            detail=f"{self._down_why}; results wait in the outbox",
            retry_in_s=retry,
            lost=lost,
            recent=recent,
        )

    def _status(self, state: str | None = None) -> bytes:
        """The status payload: `state`, or online/degraded from every component's health."""
        with self._lock:
            health = {**self._components, "mqtt": self._health()}
            self._status_due = False
        return encode_payload(
            status_payload(
                state or running_state(health),
                station=self.station.station,
                client_id=self.client_id,
                health=health,
            )
        )

    # -- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ended = self._connection()
            except Exception:
                # The worker's top level: log, then carry on as after a dropped connection, so
                # that results keep flowing once the cause (a full disk, say) has gone.
                log.exception("MQTT sender failed; reconnecting")
                ended = _Ended(accepted=False, up_s=0.0, by_us=False, server_code=None)
            if self._stopping.is_set():
                break
            self._check_takeover(ended)
            # A connection that stayed up earns a quick reconnect; one that keeps flapping
            # (a duplicate client id, say) backs off like a failed connect.
            if ended.up_s >= self.config.reconnect_max_s:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            with self._lock:
                self._retry_at = time.monotonic() + delay
            log.debug("reconnecting to MQTT broker in %.2f s", delay)
            self._stopping.wait(delay)

    def _connection(self) -> _Ended:
        """Connect, send until the connection ends or stop() completes; say how it ended."""
        c = self.config
        try:
            client = self._client_factory(self.client_id, self._protocol)
            session = _Session(client)
            self._configure(client, session)
            client.connect(c.host, c.port, keepalive=c.keepalive_s)
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake (ssl.SSLError)
            self._refused(f"cannot connect to {c.host}:{c.port}: {exc}")
            return _Ended(accepted=False, up_s=0.0, by_us=False, server_code=None)
        client.loop_start()
        try:
            self._await_connack(session)
            if self._stopping.is_set() and not session.accepted:
                return _Ended(accepted=False, up_s=0.0, by_us=True, server_code=None)
            if not session.accepted:
                self._refused(
                    f"the broker {c.host}:{c.port} did not accept the connection: "
                    f"{session.refusal or 'no CONNACK in time'}"
                )
                return _Ended(accepted=False, up_s=0.0, by_us=False, server_code=None)
            session.up_since = time.monotonic()
            self._connected(session)
            self._pump(session)
            server = session.server_reason
            return _Ended(
                accepted=True,
                up_s=time.monotonic() - session.up_since,
                by_us=session.disconnecting,
                server_code=None if server is None else server[1],
            )
        finally:
            with self._lock:
                if self._session is session:
                    self._session = None
                    self._since = time.time()
                    self._down_why = "connection lost" + (
                        f" ({session.server_reason[0]})" if session.server_reason else ""
                    )
            self._close(session)

    def _refused(self, why: str) -> None:
        """A failed connection attempt: logged when the reason is new, not at every retry."""
        with self._lock:
            self._connect_failures += 1
            repeated, self._down_why = why == self._down_why, why
        log.log(logging.DEBUG if repeated else logging.WARNING, "%s", why)

    def _await_connack(self, session: _Session) -> None:
        """Wait for the broker's answer, or for stop(). Registering under the lock and then
        checking `_stopping` means stop() either sees this session or is seen here."""
        with self._lock:
            self._connecting = session
        try:
            if not self._stopping.is_set():
                session.connack.wait(self.config.connect_timeout_s)
        finally:
            with self._lock:
                self._connecting = None

    def _configure(self, client: mqtt.Client, session: _Session) -> None:
        c = self.config
        client.enable_logger(paho_log)
        client.connect_timeout = c.connect_timeout_s
        client.max_inflight_messages_set(c.max_inflight + _PAHO_INFLIGHT_HEADROOM)
        will = status_payload(
            STATUS_OFFLINE, station=self.station.station, client_id=self.client_id
        )
        client.will_set(self.topics.status, encode_payload(will), qos=1, retain=True)
        if c.username:
            client.username_pw_set(c.username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.user_data_set(session)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def _connected(self, session: _Session) -> None:
        with self._lock:
            self._session = session
            self._connections += 1
            self._since = time.time()
            self._retry_at = None
        c = self.config
        log.info(
            "connected to MQTT broker %s:%s as %s (MQTT %s%s); %s message(s) in the outbox",
            c.host,
            c.port,
            self.client_id,
            c.protocol,
            ""
            if session.broker_max_packet is None
            else f", packets up to {session.broker_max_packet} bytes",
            len(self._outbox),
        )
        # Subscribed before our own status goes out: the retained status the broker sends back
        # is then the latest one before ours (a twin station's, if there is one).
        if self._protocol == mqtt.MQTTv5:
            session.client.subscribe(self.topics.status, options=SubscribeOptions(1, noLocal=True))
        else:
            session.client.subscribe(self.topics.status, qos=1)
        session.client.publish(self.topics.status, self._status(), qos=1, retain=True)
        self._resend_retained(session)
        if self._handlers:
            session.client.subscribe([(topic, 1) for topic in self._handlers])

    def _resend_retained(self, session: _Session) -> None:
        """Send the retained messages again on a new connection. A caller may replace one
        meanwhile (an engine swap) and send it itself, possibly before our older copy goes
        out; so what was sent is read again until none of it changed, and the broker keeps the
        newest, never a stale copy. (A message first published meanwhile is its caller's to
        send: the session is already set.)"""
        sent: dict[str, tuple[bytes, int]] = {}
        with self._lock:
            due = dict(self._retained)
        while due:
            limit = self._packet_limit(session)
            for topic, (data, qos) in due.items():
                sent[topic] = (data, qos)
                size = publish_packet_size(topic, len(data), qos, self._protocol)
                if limit is not None and size > limit:
                    self._count_drop()
                    log.warning(
                        "MQTT: retained %s not sent: %d bytes, more than the broker takes (%d)",
                        topic,
                        size,
                        limit,
                    )
                    continue
                session.client.publish(topic, data, qos=qos, retain=True)
            with self._lock:
                due = {t: v for t, v in self._retained.items() if t in sent and sent[t] != v}

    def _pump(self, session: _Session) -> None:
        """Send and settle until the connection drops or stop() has flushed."""
        while True:
            wait_s = _IDLE_WAKE_S
            if self._stopping.is_set():  # wake at the flush deadline, not up to a second later
                wait_s = min(wait_s, max(self._flush_deadline - time.monotonic(), 0.01))
            self._wake.wait(wait_s)
            # Clear before working: a wake-up that comes during the work runs one more round.
            self._wake.clear()
            self._settle(session)
            if not session.alive:
                log.warning(
                    "lost the MQTT connection%s; %s message(s) unacknowledged will be sent again",
                    "" if session.server_reason is None else f" ({session.server_reason[0]})",
                    len(session.inflight),
                )
                return
            if self._stopping.is_set():
                drained = not session.inflight and not self._outbox.pending(1, session.last_sent_id)
                if drained or time.monotonic() >= self._flush_deadline:
                    self._finish(session)
                    return
            self._check_stable(session)
            if self._status_due:
                session.client.publish(self.topics.status, self._status(), qos=1, retain=True)
            self._fill(session)

    def _settle(self, session: _Session) -> None:
        """Delete the rows whose PUBACK has arrived; set aside the ones refused for good."""
        done: list[int] = []
        while session.acked_mids:
            row_id = session.inflight.pop(session.acked_mids.popleft(), None)
            if row_id is not None:  # None: a status or non-durable message
                done.append(row_id)
        if done:
            self._outbox.ack_many(done)
            with self._lock:
                self._acked += len(done)
        while session.refused:
            mid, reason, code = session.refused.popleft()
            row_id = session.inflight.pop(mid, None)
            if row_id is None:
                continue
            if code in _TRANSIENT_REFUSALS:  # the broker says "not now": send it again later
                log.warning("the MQTT broker refused message %d for now (%s)", row_id, reason)
                session.disconnecting = True
                session.client.disconnect()
                return
            self._put_aside(row_id, f"refused by the broker: {reason}")

    def _fill(self, session: _Session) -> None:
        """Send the next rows in id order while the window has room; set aside the ones too
        big for the broker."""
        room = self.config.max_inflight - len(session.inflight)
        if room <= 0:
            return
        limit = self._packet_limit(session)
        for row in self._outbox.pending(room, session.last_sent_id):
            if limit is not None and (size := self._size(row)) > limit:
                session.last_sent_id = row.id
                self._put_aside(row.id, f"{size} bytes, more than the broker takes ({limit} bytes)")
                continue
            info = session.client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # the connection is going; the row goes out on the next one
            session.inflight[info.mid] = row.id
            session.last_sent_id = row.id
            with self._lock:
                self._sent += 1
                if row.id <= self._highest_sent_id:
                    self._resent += 1
                else:
                    self._highest_sent_id = row.id

    def _size(self, row: Message) -> int:
        return publish_packet_size(row.topic, len(row.payload), row.qos, self._protocol)

    def _packet_limit(self, session: _Session) -> int | None:
        limits = [x for x in (self.config.max_packet_size, session.broker_max_packet) if x]
        return min(limits) if limits else None

    def _put_aside(self, row_id: int, why: str) -> None:
        if not self._outbox.set_aside(row_id, why):
            return
        with self._lock:
            self._set_aside += 1
            self._recent_aside.append(row_id)
            total = self._set_aside
            self._status_due = True
        log.error(
            "MQTT message %d set aside: %s; the messages behind it go on (%d set aside in all, "
            "kept in %s)",
            row_id,
            why,
            total,
            self._outbox.path,
        )

    def _finish(self, session: _Session) -> None:
        """The clean goodbye: "stopped" (retained), then DISCONNECT, which cancels the will."""
        left = len(self._outbox)
        if left:
            log.warning("stopping with %s MQTT message(s) unsent; they stay in the outbox", left)
        info = session.client.publish(
            self.topics.status, self._status(STATUS_STOPPED), qos=1, retain=True
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            wait_s = max(self._flush_deadline - time.monotonic(), _STATUS_GRACE_S)
            with contextlib.suppress(RuntimeError):  # raised if the connection dropped meanwhile
                info.wait_for_publish(wait_s)
        self._settle(session)  # acks that arrived while waiting
        session.disconnecting = True
        session.client.disconnect()

    def _close(self, session: _Session) -> None:
        """End paho's network thread in bounded time, whatever state the connection is in."""
        client = session.client
        if not session.closed.is_set() and not session.disconnecting:
            session.disconnecting = True
            client.disconnect()
        if not session.closed.wait(_CLOSE_GRACE_S):
            # The DISCONNECT could not be written (a frozen broker with a full socket buffer):
            # shut the socket so paho's loop ends now rather than at the keepalive timeout.
            sock = client.socket()
            if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            session.closed.wait(_CLOSE_GRACE_S)
        client.loop_stop()

    # -- identity clashes (the sender thread) --------------------------------------------------

    def _check_takeover(self, ended: _Ended) -> None:
        """A connection the broker closed soon after accepting it, several times in a row (or
        with MQTT 5's "Session taken over"): another client is using our client id."""
        if not ended.accepted or ended.by_us:
            return
        if ended.server_code == _SESSION_TAKEN_OVER:
            self._quick_closes = _TAKEOVER_CLOSES
        elif ended.server_code is not None or ended.up_s >= self._quick_close_s:
            self._quick_closes = 0  # the broker said why, or the connection lived a while
            return
        else:
            self._quick_closes += 1
        if self._quick_closes < _TAKEOVER_CLOSES:
            return
        why = (
            f"MQTT client id {self.client_id!r} is in use by another client: the broker closed "
            f"this connection {self._quick_closes} times in a row within "
            f"{self._quick_close_s:.0f} s of accepting it (a station with a copied "
            "configuration? give each its own client_id, or leave it empty)"
        )
        with self._lock:
            first = self._takeover is None
            if first:
                self._takeover, self._takeover_since = why, time.time()
                self._status_due = True
        if first:
            log.error("%s", why)

    def _check_stable(self, session: _Session) -> None:
        """A connection that stays up clears a take-over."""
        if self._takeover is None or time.monotonic() - session.up_since < self._quick_close_s:
            return
        with self._lock:
            self._takeover = None
            self._quick_closes = 0
            self._status_due = True
        log.info("the MQTT connection as %s has stayed up: no more take-over", self.client_id)

    # -- paho callbacks (paho's network thread) ------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        session: _Session,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            session.refusal = str(reason_code)
        else:
            # paho sets a property attribute only when the broker sent it
            session.broker_max_packet = getattr(properties, "MaximumPacketSize", None)
            session.accepted = True
        session.connack.set()
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        session: _Session,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if flags.is_disconnect_packet_from_server:
            session.server_reason = (str(reason_code), int(reason_code.value))
        session.closed.set()
        session.connack.set()  # a connection closed before CONNACK ends that wait too
        self._wake.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        session: _Session,
        mid: int,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:  # MQTT 5: the broker says why it does not take it
            session.refused.append((mid, str(reason_code), int(reason_code.value)))
        else:
            session.acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, session: _Session, msg: mqtt.MQTTMessage) -> None:
        """A status on our own status topic (a twin station?), or a command for a handler."""
        if msg.topic == self.topics.status:
            self._on_status(msg)
            return
        handler = self._handlers.get(msg.topic)
        if handler is None:
            return
        if msg.retain:
            log.warning("ignoring the retained message on %s (a command runs once)", msg.topic)
            return
        try:
            handler(bytes(msg.payload))
        except Exception:  # paho's thread must survive a handler's bug
            log.exception("handler for %s failed", msg.topic)

    def _on_status(self, msg: mqtt.MQTTMessage) -> None:
        """A status on our own status topic: another client id saying it is online there is a
        twin station; it saying stopped or offline ends that."""
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return  # not a status of this version (an older PartSight's plain text)
        other = data.get("client_id") if isinstance(data, dict) else None
        if not isinstance(other, str) or other == self.client_id:
            return
        state = data.get("state")
        with self._lock:
            if state in (STATUS_ONLINE, STATUS_DEGRADED) and self._twin != other:
                self._twin, self._twin_since, found = other, time.time(), True
            elif state in (STATUS_STOPPED, STATUS_OFFLINE) and self._twin == other:
                self._twin, found = None, False
            else:
                return
            self._status_due = True
        self._wake.set()
        if found:
            log.error(
                "another station publishes as %s (client %r, we are %r): consumers merge its "
                "parts with ours; give one of them other site/line/station names",
                self.topics.prefix,
                other,
                self.client_id,
            )
        else:
            log.info("the other station on %s (client %r) has gone", self.topics.prefix, other)
