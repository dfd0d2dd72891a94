"""The configuration's exception.

PartSightError (edge.errors)
└── ConfigError   the configuration file cannot be used: unreadable, not TOML, or not valid
                  against the schema; carries every problem found, each with its location

Messages never contain a secret (a password is read from a file, never echoed).
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import PartSightError


class ConfigError(PartSightError):
    """Every problem found in one configuration file.

    `errors` is a list of (location, message): the location is a dotted key path such as
    "mqtt.port", "line 3, column 7" for a TOML syntax error, or "" for the file as a whole.
    """

    def __init__(self, path: Path | str, errors: list[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.errors = list(errors)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One `FILE: location: message` line per problem (`FILE: message` for the file)."""
        return [
            f"{self.path}: {loc}: {msg}" if loc else f"{self.path}: {msg}"
            for loc, msg in self.errors
        ]
