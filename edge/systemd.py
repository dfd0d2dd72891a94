"""Running under systemd: readiness and watchdog notifications (sd_notify), and logging to
journald.

The notification protocol is small enough to speak directly: one AF_UNIX datagram of
newline-separated KEY=VALUE lines to the socket named by $NOTIFY_SOCKET (a path, or an abstract
socket written with a leading "@"). Without $NOTIFY_SOCKET (run by hand, in tests) every
notification is a no-op. Notifications never raise: a service manager that went away must not
take the pipeline down with it (systemd notices a missing READY=1 or WATCHDOG=1 by itself).

Logging: under systemd, records go to journald with their priority, through
systemd.journal.JournalHandler when systemd-python is installed, otherwise as stderr lines
with a syslog priority prefix (`<3>` error ... `<7>` debug), which journald parses from a
service's stderr (SyslogLevelPrefix=, on by default). Journald stamps time itself, so no
timestamps are written then.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Literal, TextIO

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"

JournaldMode = Literal["auto", "on", "off"]


class Notifier:
    """Sends sd_notify messages to systemd. Thread-safe; a no-op without $NOTIFY_SOCKET."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._environ = dict(env)
        self._address = _socket_address(env.get(NOTIFY_SOCKET_ENV, ""))
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed = False  # log a send failure once, not at every watchdog tick

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to notify."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send KEY=VALUE fields in one datagram; True when it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                if not self._failed:
                    log.warning("cannot notify systemd at %s: %s", self._printable(), exc)
                    self._failed = True
                return False
            self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete (Type=notify: systemd considers the unit started now)."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Feed the watchdog (WatchdogSec=). Prefer WatchdogGate, which feeds only on progress."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog_interval_s(self, pid: int | None = None) -> float | None:
        """The watchdog timeout systemd expects to be fed within, or None when there is none
        for this process ($WATCHDOG_USEC unset or invalid, or $WATCHDOG_PID names another)."""
        usec = self._environ.get(WATCHDOG_USEC_ENV, "")
        try:
            value = int(usec)
        except ValueError:
            return None
        if value <= 0:
            return None
        owner = self._environ.get(WATCHDOG_PID_ENV)
        if owner:
            try:
                if int(owner) != (os.getpid() if pid is None else pid):
                    return None
            except ValueError:
                return None
        return value / 1e6

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _printable(self) -> str:
        address = self._address or ""
        return "@" + address[1:] if address.startswith("\0") else address


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # Linux abstract namespace
    if value.startswith("/"):
        return value
    if value:
        # e.g. vsock: (systemd >= 254, for VMs); not something a line station uses.
        log.warning("$%s=%r is not a supported address; not notifying", NOTIFY_SOCKET_ENV, value)
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())  # a newline would start a new KEY=VALUE field


class WatchdogGate:
    """Feeds the watchdog only while the pipeline really makes progress.

    The pipeline calls progress() whenever a part gets its verdict, or an idle heartbeat passes
    through it; the daemon's main loop calls maybe_feed(now) often (say every second). A feed
    is sent at most every `interval_s`, and only if progress() was called since the last one:
    a stalled pipeline stops feeding, and systemd kills and restarts the daemon.
    """

    def __init__(
        self,
        notifier: Notifier,
        interval_s: float | None = None,
        feed_fraction: float = 0.5,
    ) -> None:
        """`interval_s` defaults to feed_fraction x the watchdog timeout systemd gave this
        process; with no watchdog configured the gate never feeds (enabled is False)."""
        self._notifier = notifier
        if interval_s is None:
            timeout = notifier.watchdog_interval_s()
            interval_s = None if timeout is None else timeout * feed_fraction
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._progressed = False
        self._last_feed: float | None = None
        self._since: float | None = None  # the first maybe_feed() call
        self._stalled = False
        self.feeds = 0

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None and self._notifier.enabled

    def progress(self) -> None:
        """Something went through the pipeline (a verdict, an idle heartbeat). Cheap."""
        self._progressed = True  # a plain bool store: atomic, no lock on the hot path

    def maybe_feed(self, now: float) -> bool:
        """Send WATCHDOG=1 if due and there was progress since the last feed. `now` is
        time.monotonic(). Returns True when a feed was sent."""
        if self.interval_s is None:
            return False
        with self._lock:
            if self._since is None:
                self._since = now
            if self._last_feed is not None and now - self._last_feed < self.interval_s:
                return False
            if not self._progressed:
                waited = now - (self._since if self._last_feed is None else self._last_feed)
                if not self._stalled and waited >= self.interval_s:
                    log.warning("no pipeline progress for %.1f s: not feeding the watchdog", waited)
                    self._stalled = True
                return False
            self._progressed = False
            self._last_feed = now
            if self._stalled:
                log.info("the pipeline makes progress again: feeding the watchdog")
                self._stalled = False
            sent = self._notifier.watchdog()
            if sent:
                self.feeds += 1
        return sent


# syslog priorities (sd-daemon.h): what journald reads from a `<N>` line prefix.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)


def syslog_priority(levelno: int) -> int:
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return 7  # debug


class SyslogPrefixFormatter(logging.Formatter):
    """`<N>logger: message`, with the prefix on every line, so a traceback stays an error."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def under_systemd(environ: Mapping[str, str] | None = None) -> bool:
    """True when systemd started this process with its output going to the journal."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


# Marks the handler setup_logging installed, so a second call replaces only that one.
_MARK = "_partsight_handler"


def setup_logging(
    level: int | str = logging.INFO,
    journald: JournaldMode = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> str:
    """Configure the root logger; returns the output chosen: "journal" (JournalHandler),
    "stderr-priority" (stderr with `<N>` prefixes) or "stderr" (timestamped lines).

    journald: "auto" uses the journal when run by systemd ($JOURNAL_STREAM or
    $INVOCATION_ID set), "on" always, "off" never. Calling it again replaces what it set up.
    """
    if journald not in ("auto", "on", "off"):
        raise ValueError(f"journald must be auto, on or off, got {journald!r}")
    use_journal = journald == "on" or (journald == "auto" and under_systemd(environ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    mode = "stderr"
    if use_journal:
        journal = _journal_handler()
        if journal is not None:
            handler, mode = journal, "journal"
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        else:
            handler, mode = logging.StreamHandler(stream or sys.stderr), "stderr-priority"
            handler.setFormatter(SyslogPrefixFormatter())
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return mode


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler  # systemd-python, optional
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="partsight")
    return handler
