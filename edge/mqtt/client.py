"""Making paho-mqtt clients: the default factory, the TLS context, the size of a PUBLISH
packet, and paho's log lines as the publisher wants them.

The publisher takes a factory (client id, protocol -> unconfigured paho Client) so tests and
other transports can supply their own; it configures will, credentials, TLS and callbacks itself.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.mqtt.errors import MqttConfigError

ClientFactory = Callable[[str, MQTTProtocolVersion], mqtt.Client]
PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


def paho_client(
    client_id: str, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5
) -> mqtt.Client:
    """A client (MQTT 5 or 3.1.1) with a clean start and no automatic reconnect.

    Clean start, because nothing the publisher needs lives in the broker's session: unacked
    messages are kept in the outbox and resent from there. No automatic reconnect, because the
    publisher reconnects itself (with jitter) using a fresh client each time.
    """
    if protocol == mqtt.MQTTv5:  # MQTT 5 asks for a clean start at connect(), the default
        return mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=False,
        )
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=protocol,
        reconnect_on_failure=False,
    )


def publish_packet_size(topic: str, payload_len: int, qos: int, protocol: int) -> int:
    """Bytes of the PUBLISH packet paho sends for this message (no properties): fixed header,
    topic, packet id (QoS > 0), properties length (MQTT 5), payload. MQTT 5 section 3.3; it is
    what a broker compares with its Maximum Packet Size."""
    remaining = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + payload_len
    if protocol == mqtt.MQTTv5:
        remaining += 1
    length_bytes = 1
    while remaining >= 128**length_bytes:
        length_bytes += 1
    return 1 + length_bytes + remaining


class PahoNoise(logging.Filter):
    """Drops paho's "Client is not connected" lines: its network loop says so at ERROR when it
    runs once more after a disconnect (ours at a clean stop, or a dropped connection that the
    publisher reports itself), which is no fault of anything."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected")


def tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate and host name (TLS >= 1.2),
    optionally presenting a client certificate. Unreadable files are a MqttConfigError."""
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise MqttConfigError(f"{ca_file}: cannot load MQTT CA certificate: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise MqttConfigError(
                f"{cert_file}: cannot load MQTT client certificate/key {key_file}: {exc}"
            ) from exc
    return ctx
