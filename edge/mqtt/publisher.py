"""The MQTT publisher: drains the outbox to the broker in order, and never lets the network
hold up the caller.

Threads:
- callers (the pipeline's output worker, the metrics monitor) call `publish`. A durable message
  is only written to the outbox (an fsync, no network) and the sender is woken; a non-durable
  one is handed to paho's network thread, or dropped and counted while offline.
- the sender thread (`mqtt-sender`) owns the connection: it connects with back-off and jitter,
  publishes "online", sends outbox rows in id order with at most `max_inflight` unacknowledged,
  deletes a row when its PUBACK arrives, and reconnects when the connection drops.
- paho's network thread (one per connection) does the socket I/O and runs our callbacks. The
  callbacks only record what happened and wake the sender: paho calls on_publish holding its own
  message lock, so taking ours there could deadlock against a sender inside `client.publish`.
  Likewise the handlers of subscribed command topics (`subscribe`) only hand the payload on.

Each connection uses a fresh paho client. Rows sent on a connection that dropped before their
PUBACK are sent again on the next one, oldest first, so what a subscriber sees is in order once
duplicates are dropped, and a broker outage adds at most `max_inflight` duplicates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from edge.mqtt.backoff import Backoff
from edge.mqtt.client import ClientFactory, paho_client, tls_context
from edge.mqtt.credentials import read_password
from edge.mqtt.outbox import Outbox
from edge.mqtt.settings import MqttSettings
from edge.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, STATUS_STOPPED, Topics

log = logging.getLogger(__name__)
paho_log = logging.getLogger(__name__ + ".paho")

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
        self.inflight: dict[int, int] = {}  # mid -> outbox id; sender thread only
        self.last_sent_id = 0

    @property
    def alive(self) -> bool:
        return self.accepted and not self.closed.is_set()


class MqttPublisher:
    """Publishes results, alerts, metrics and status for one station. `start()`, then
    `publish(...)` from any thread, then `stop()`. The outbox is the caller's to open and close."""

    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        client_factory: ClientFactory = paho_client,
        environ: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """Reads the password and TLS files now, so a bad setting fails at start-up
        (MqttConfigError) rather than on every reconnect. `environ` is where
        $CREDENTIALS_DIRECTORY is looked up (default: the process environment)."""
        self.settings = settings
        self.topics: Topics = settings.topics
        self._outbox = outbox
        self._client_factory = client_factory
        self._client_id = settings.effective_client_id
        self._password = read_password(
            settings.password_file,
            settings.password_credential,
            os.environ if environ is None else environ,
        )
        self._tls = (
            tls_context(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
            if settings.tls
            else None
        )
        self._backoff = backoff or Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
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

        not durable: sent if connected, else dropped and counted. A retained non-durable
        message is also remembered and sent again on every reconnect, so state topics such as
        `engine` are right even after a broker restart that lost its retained messages.
        Returns None.
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
        # paho only queues the packet here; its network thread writes it.
        info = session.client.publish(topic, data, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._count_drop()
        return None

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
        thread.join(limit + self.settings.connect_timeout_s * 2)
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
            )

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1

    # -- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                up_s = self._connection()
            except Exception:
                # The worker's top level: log, then carry on as after a dropped connection, so
                # that results keep flowing once the cause (a full disk, say) has gone.
                log.exception("MQTT sender failed; reconnecting")
                up_s = 0.0
            if self._stopping.is_set():
                break
            # A connection that stayed up earns a quick reconnect; one that keeps flapping
            # (a duplicate client id, say) backs off like a failed connect.
            if up_s >= self.settings.reconnect_max_s:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            log.info("reconnecting to MQTT broker in %.2f s", delay)
            self._stopping.wait(delay)

    def _connection(self) -> float:
        """Connect, send until the connection ends or stop() completes; return how long the
        connection was up (0 when it never came up)."""
        s = self.settings
        try:
            client = self._client_factory(self._client_id)
            session = _Session(client)
            self._configure(client, session)
            client.connect(s.host, s.port, keepalive=s.keepalive_s)
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake (ssl.SSLError)
            with self._lock:
                self._connect_failures += 1
            log.warning("cannot connect to MQTT broker %s:%s: %s", s.host, s.port, exc)
            return 0.0
        client.loop_start()
        try:
            self._await_connack(session)
            if self._stopping.is_set() and not session.accepted:
                return 0.0
            if not session.accepted:
                with self._lock:
                    self._connect_failures += 1
                log.warning(
                    "MQTT broker %s:%s did not accept the connection: %s",
                    s.host,
                    s.port,
                    session.refusal or "no CONNACK in time",
                )
                return 0.0
            up_since = time.monotonic()
            self._connected(session)
            self._pump(session)
            return time.monotonic() - up_since
        finally:
            with self._lock:
                self._session = None
            self._close(session)

    def _await_connack(self, session: _Session) -> None:
        """Wait for the broker's answer, or for stop(). Registering under the lock and then
        checking `_stopping` means stop() either sees this session or is seen here."""
        with self._lock:
            self._connecting = session
        try:
            if not self._stopping.is_set():
                session.connack.wait(self.settings.connect_timeout_s)
        finally:
            with self._lock:
                self._connecting = None

    def _configure(self, client: mqtt.Client, session: _Session) -> None:
        s = self.settings
        client.enable_logger(paho_log)
        client.connect_timeout = s.connect_timeout_s
        client.max_inflight_messages_set(s.max_inflight + _PAHO_INFLIGHT_HEADROOM)
        client.will_set(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
        if s.username:
            client.username_pw_set(s.username, self._password)
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
            retained = dict(self._retained)
        s = self.settings
        log.info(
            "connected to MQTT broker %s:%s as %s; %s message(s) in the outbox",
            s.host,
            s.port,
            self._client_id,
            len(self._outbox),
        )
        session.client.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True)
        for topic, (data, qos) in retained.items():
            session.client.publish(topic, data, qos=qos, retain=True)
        if self._handlers:
            session.client.subscribe([(topic, 1) for topic in self._handlers])

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
                    "lost the MQTT connection; %s message(s) unacknowledged will be sent again",
                    len(session.inflight),
                )
                return
            if self._stopping.is_set():
                drained = not session.inflight and not self._outbox.pending(1, session.last_sent_id)
                if drained or time.monotonic() >= self._flush_deadline:
                    self._finish(session)
                    return
            self._fill(session)

    def _settle(self, session: _Session) -> None:
        """Delete the rows whose PUBACK has arrived."""
        done: list[int] = []
        while session.acked_mids:
            row_id = session.inflight.pop(session.acked_mids.popleft(), None)
            if row_id is not None:  # None: a status or non-durable message
                done.append(row_id)
        if done:
            self._outbox.ack_many(done)
            with self._lock:
                self._acked += len(done)

    def _fill(self, session: _Session) -> None:
        """Send the next rows in id order while the window has room."""
        room = self.settings.max_inflight - len(session.inflight)
        if room <= 0:
            return
        for row in self._outbox.pending(room, session.last_sent_id):
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

    def _finish(self, session: _Session) -> None:
        """The clean goodbye: "stopped" (retained), then DISCONNECT, which cancels the will."""
        left = len(self._outbox)
        if left:
            log.warning("stopping with %s MQTT message(s) unsent; they stay in the outbox", left)
        info = session.client.publish(self.topics.status, STATUS_STOPPED, qos=1, retain=True)
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
        session.acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, session: _Session, msg: mqtt.MQTTMessage) -> None:
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
