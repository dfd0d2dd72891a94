"""The MQTT package's exceptions.

PartSightError (edge.errors)
└── MqttError            anything this package raises on purpose
    ├── OutboxError      the disk-backed outbox cannot be opened or written (corrupt, unwritable,
    │                    locked by another process); results would be lost, so it is never hidden
    └── MqttConfigError  settings that cannot work: a bad topic name, a missing password or
                         certificate file, inconsistent TLS options

Each carries a one-line message meant for logs and CLI output, and never a secret.
"""

from __future__ import annotations

from edge.errors import PartSightError


class MqttError(PartSightError):
    """Base of every error the MQTT package raises on purpose."""


class OutboxError(MqttError):
    """The outbox database cannot be used."""


class MqttConfigError(MqttError):
    """MQTT settings that cannot work."""
