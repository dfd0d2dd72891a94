"""Progress for long-running commands: a tqdm bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


class _Progress:
    def __init__(self, total: int, desc: str, unit: str, enabled: bool) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._bar: Any = None
        self._enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def update(self, n: int = 1, **info: float) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if info:
                self._bar.set_postfix({k: f"{v:.5g}" for k, v in info.items()})
        elif self._enabled:
            # Not a terminal (CI, journald, make): one line per step at most every tenth.
            step = max(1, self.total // 10)
            if self.done % step == 0 or self.done == self.total:
                extra = " ".join(f"{k}={v:.5g}" for k, v in info.items())
                print(
                    f"{self.desc}: {self.done}/{self.total} {self.unit} {extra}".rstrip(),
                    file=sys.stderr,
                    flush=True,
                )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = True) -> _Progress:
    return _Progress(total, desc, unit, enabled)
