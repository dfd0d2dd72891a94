"""Making paho-mqtt clients: the default factory and the TLS context.

The publisher takes a factory (client id -> unconfigured paho Client) so tests and other
transports can supply their own; it configures will, credentials, TLS and callbacks itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.mqtt.errors import MqttConfigError

ClientFactory = Callable[[str], mqtt.Client]


def paho_client(client_id: str) -> mqtt.Client:
    """An MQTT 3.1.1 client with a clean session and no automatic reconnect.

    Clean session, because nothing the publisher needs lives in the broker's session: unacked
    messages are kept in the outbox and resent from there. No automatic reconnect, because the
    publisher reconnects itself (with jitter) using a fresh client each time.
    """
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )


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
