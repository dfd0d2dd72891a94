"""Version precedence of engine versions, as Semantic Versioning 2.0.0 defines it (semver.org,
section 11): major, minor and patch compare numerically; a pre-release (`1.2.0-rc.1`) is older
than its release; pre-release identifiers compare one by one, numeric ones numerically and
before alphanumeric ones, which compare in ASCII order, and a shorter list is older when all its
identifiers are equal; build metadata (`+build.5`) is ignored.

The manifest's own pattern (edge.manifest.Manifest.version) decides which strings are versions.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")

# A release sorts after every pre-release of the same major.minor.patch.
_RELEASE: tuple[tuple[int, int, str], ...] = ((2, 0, ""),)

Key = tuple[int, int, int, tuple[tuple[int, int, str], ...]]


def precedence(version: str) -> Key:
    """A sort key: a < b in precedence exactly when precedence(a) < precedence(b).
    Raises ValueError for a string that is not a version."""
    found = _VERSION.match(version)
    if found is None:
        raise ValueError(f"{version!r} is not a semantic version")
    major, minor, patch, pre = found.groups()
    if pre is None:
        tail = _RELEASE
    else:
        tail = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
        )
    return int(major), int(minor), int(patch), tail


def newer(a: str, b: str) -> bool:
    """True when version `a` takes precedence over `b`."""
    return precedence(a) > precedence(b)
