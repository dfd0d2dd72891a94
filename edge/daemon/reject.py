"""The reject output: what throws a rejected part off the line.

One interface (RejectOutput), implementations chosen by the config's `kind`. Only `none` exists
yet: it drives nothing and logs. The reject-output work adds the camera output line, GPIO and
Modbus/TCP; those raise hw.errors.OutputError when they cannot drive the output, which the
output stage counts and logs without holding up the results.

The output stage calls `handle` for every verdict, OK ones included, as soon as the verdict is
settled (before results are put in part order): a real output may need to know about good
parts too (a diverter that must stay open), and it must never wait on anything else.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from edge.config.reject import RejectConfig
from edge.daemon.verdict import Verdict

log = logging.getLogger(__name__)


@runtime_checkable
class RejectOutput(Protocol):
    name: str

    def open(self) -> None:
        """Claim and set up the output. Idempotent."""
        ...

    def close(self) -> None:
        """Release the output, leaving it in its safe state. Idempotent; never raises."""
        ...

    def handle(self, verdict: Verdict) -> None:
        """Act on one part's verdict (a rejected one is thrown out). OutputError if the
        output cannot be driven."""
        ...


class NoneRejectOutput:
    """No reject output: verdicts are published, parts are not thrown out."""

    name = "none"

    def __init__(self) -> None:
        self.rejected = 0

    def open(self) -> None:
        log.info("reject output: none (rejected parts are reported, not thrown out)")

    def close(self) -> None:
        pass

    def handle(self, verdict: Verdict) -> None:
        if verdict.rejected:
            self.rejected += 1
            log.debug(
                "part %d: %s (%s); no reject output configured",
                verdict.part_id,
                verdict.verdict,
                verdict.reason,
            )


def create_reject_output(config: RejectConfig) -> RejectOutput:
    """The reject output the configuration names."""
    if config.kind == "none":
        return NoneRejectOutput()
    raise ValueError(f"unknown reject output kind {config.kind!r}")  # pragma: no cover
