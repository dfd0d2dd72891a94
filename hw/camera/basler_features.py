"""Typed access to a camera's GenICam node map, with errors that name the setting.

Works on pypylon node objects, whatever their flavour; vendor exceptions raised while setting a
feature become CameraConfigError naming the setting and the feature.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from hw.camera.limits import check_float, check_int
from hw.camera.pylon_sdk import short_message
from hw.errors import CameraConfigError

log = logging.getLogger(__name__)


class Features:
    def __init__(self, nodemap: Any, genicam: ModuleType) -> None:
        self._nodemap = nodemap
        self._genicam = genicam

    def node(self, name: str) -> Any | None:
        """The feature if this camera implements it and it is available now, else None."""
        try:
            node = self._nodemap.GetNode(name)
        except self._genicam.GenericException:
            return None
        if node is None or not self._genicam.IsAvailable(node):
            return None
        return node

    def has(self, name: str) -> bool:
        return self.node(name) is not None

    def writable(self, name: str) -> bool:
        node = self.node(name)
        return node is not None and bool(self._genicam.IsWritable(node))

    def first(self, *names: str) -> str | None:
        """The first of these features the camera has (cameras differ in naming)."""
        return next((n for n in names if self.has(n)), None)

    def symbolics(self, name: str) -> tuple[str, ...]:
        node = self.node(name)
        return () if node is None else tuple(node.GetSymbolics())

    def get(self, name: str) -> Any:
        node = self._require(name, name)
        return node.GetValue()

    def set_enum(self, setting: str, name: str, value: str) -> None:
        choices = self.symbolics(name)
        if value not in choices:
            raise CameraConfigError(
                f"{setting}: {name}={value!r} is not offered by this camera "
                f"(it offers: {', '.join(choices) or 'nothing'})"
            )
        self._set(setting, name, value)

    def set_int(self, setting: str, name: str, value: int) -> int:
        node = self._require(setting, name)
        inc = self._increment(node)
        check_int(setting, name, value, int(node.GetMin()), int(node.GetMax()), inc)
        self._set(setting, name, value)
        return int(node.GetValue())

    def set_float(self, setting: str, name: str, value: float) -> float:
        node = self._require(setting, name)
        check_float(setting, name, value, float(node.GetMin()), float(node.GetMax()))
        self._set(setting, name, value)
        return float(node.GetValue())

    def set_string(self, setting: str, name: str, value: str) -> None:
        self._set(setting, name, value)

    def set_quietly(self, name: str, value: Any) -> bool:
        """Set a feature that only helps (auto modes off, other triggers off); False if the
        camera does not have it or refuses, which is logged, not raised."""
        if not self.writable(name):
            return False
        try:
            self._nodemap.GetNode(name).SetValue(value)
        except self._genicam.GenericException as exc:
            log.debug("could not set %s=%s: %s", name, value, short_message(exc))
            return False
        return True

    def _increment(self, node: Any) -> int:
        try:
            return max(1, int(node.GetInc()))
        except self._genicam.GenericException:
            return 1

    def _require(self, setting: str, name: str) -> Any:
        node = self.node(name)
        if node is None:
            raise CameraConfigError(f"{setting}: this camera has no {name} feature")
        return node

    def _set(self, setting: str, name: str, value: Any) -> None:
        node = self._require(setting, name)
        if not self._genicam.IsWritable(node):
            raise CameraConfigError(f"{setting}: {name} is not writable on this camera now")
        try:
            node.SetValue(value)
        except self._genicam.GenericException as exc:
            raise CameraConfigError(
                f"{setting}: camera refused {name}={value!r}: {short_message(exc)}"
            ) from exc
