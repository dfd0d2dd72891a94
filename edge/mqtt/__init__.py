"""MQTT for the line daemon: a disk-backed outbox, the station's topic names, and a publisher
that sends every result to the broker in order and loses none across outages and restarts.

The per-part result payload is described by `result.schema.json` (RESULT_SCHEMA_PATH).
"""

from __future__ import annotations

from pathlib import Path

from edge.mqtt.backoff import Backoff
from edge.mqtt.client import ClientFactory, paho_client, tls_context
from edge.mqtt.client_id import ClientId, client_id
from edge.mqtt.errors import MqttConfigError, MqttError, OutboxError
from edge.mqtt.outbox import Message, Outbox
from edge.mqtt.publisher import MqttPublisher, PublisherCounters, encode_payload
from edge.mqtt.status import status_payload
from edge.mqtt.topics import Topics

RESULT_SCHEMA_PATH = Path(__file__).with_name("result.schema.json")
RESULT_SCHEMA_ID = "partsight.result/1"  # the `schema` field of every result payload

__all__ = [
    "RESULT_SCHEMA_ID",
    "RESULT_SCHEMA_PATH",
    "Backoff",
    "ClientFactory",
    "ClientId",
    "Message",
    "MqttConfigError",
    "MqttError",
    "MqttPublisher",
    "Outbox",
    "OutboxError",
    "PublisherCounters",
    "Topics",
    "client_id",
    "encode_payload",
    "paho_client",
    "status_payload",
    "tls_context",
]
