"""The shared results file: a JSON list of {"name", "value", "unit"} entries, merged by name."""

from __future__ import annotations

import json
from pathlib import Path


def merge_results(path: Path, entries: list[dict[str, object]]) -> None:
    """Replace entries with the same name, keep the others, write back sorted by name."""
    current: dict[str, dict[str, object]] = {}
    if path.is_file():
        current = {str(e["name"]): e for e in json.loads(path.read_text())}
    for entry in entries:
        current[str(entry["name"])] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(sorted(current.values(), key=lambda e: str(e["name"])), indent=2) + "\n"
    )


def entry(name: str, value: float, unit: str, **extra: object) -> dict[str, object]:
    return {"name": name, "value": round(float(value), 4), "unit": unit, **extra}
