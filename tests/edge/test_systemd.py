"""sd_notify against real AF_UNIX datagram sockets, the watchdog gate, and journald logging."""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.systemd import Notifier, WatchdogGate, setup_logging, syslog_priority


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound in tmp, standing in for systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_notifications_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready(status="engine widget@1.2.0 loaded")
    assert receive(sock) == ["READY=1", "STATUS=engine widget@1.2.0 loaded"]
    assert notifier.watchdog()
    assert receive(sock) == ["WATCHDOG=1"]
    assert notifier.status("running\nparts: 12")  # one line: a newline would start a new field
    assert receive(sock) == ["STATUS=running parts: 12"]
    assert notifier.stopping()
    assert receive(sock) == ["STOPPING=1"]
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"partsight-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert receive(sock) == ["READY=1"]
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval_s() is None


def test_a_vanished_socket_does_not_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING):
        assert not notifier.watchdog()
        assert not notifier.watchdog()
    assert len(caplog.records) == 1  # said once, not at every tick


def test_watchdog_interval_from_the_environment() -> None:
    pid = os.getpid()
    assert Notifier({"WATCHDOG_USEC": "10000000"}).watchdog_interval_s() == 10.0
    env = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(pid)}
    assert Notifier(env).watchdog_interval_s() == 4.0
    env["WATCHDOG_PID"] = str(pid + 1)  # meant for another process
    assert Notifier(env).watchdog_interval_s() is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval_s() is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval_s() is None


def test_watchdog_gate_feeds_only_after_progress(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.settimeout(0.2)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}
    gate = WatchdogGate(Notifier(env), feed_fraction=0.5)
    assert gate.enabled and gate.interval_s == 5.0

    assert not gate.maybe_feed(100.0)  # no progress yet: no feed
    gate.progress()
    assert gate.maybe_feed(100.5)
    assert receive(sock) == ["WATCHDOG=1"]

    gate.progress()
    assert not gate.maybe_feed(102.0)  # progress, but not due yet
    assert gate.maybe_feed(105.5)
    assert receive(sock) == ["WATCHDOG=1"]

    # The pipeline stalls: however often the main loop asks, nothing is sent.
    for now in (111.0, 120.0, 130.0):
        assert not gate.maybe_feed(now)
    with pytest.raises(TimeoutError):
        sock.recv(4096)

    gate.progress()  # it recovers
    assert gate.maybe_feed(131.0)
    assert receive(sock) == ["WATCHDOG=1"]
    assert gate.feeds == 3


def test_watchdog_gate_is_off_without_a_watchdog(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    gate = WatchdogGate(Notifier({"NOTIFY_SOCKET": path}))
    gate.progress()
    assert not gate.enabled
    assert not gate.maybe_feed(1.0)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def no_journal_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stderr fallback is what runs where systemd-python is not installed: make it so here.
    monkeypatch.setitem(sys.modules, "systemd", None)
    monkeypatch.setitem(sys.modules, "systemd.journal", None)


@pytest.mark.usefixtures("restore_logging", "no_journal_module")
def test_under_systemd_lines_carry_syslog_priorities() -> None:
    out = io.StringIO()
    mode = setup_logging("debug", "auto", environ={"JOURNAL_STREAM": "8:1234"}, stream=out)
    assert mode == "stderr-priority"
    log = logging.getLogger("edge.test")
    log.debug("d")
    log.info("i %s", 1)
    log.warning("w")
    log.error("e")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "<7>edge.test: d",
        "<6>edge.test: i 1",
        "<4>edge.test: w",
        "<3>edge.test: e",
    ]
    assert lines[4] == "<3>edge.test: failed"
    assert all(line.startswith("<3>") for line in lines[5:])  # the traceback stays an error
    assert "RuntimeError: boom" in lines[-1]


@pytest.mark.usefixtures("restore_logging", "no_journal_module")
def test_plain_stderr_outside_systemd_and_setup_replaces_itself() -> None:
    first, second = io.StringIO(), io.StringIO()
    assert setup_logging("info", "auto", environ={}, stream=first) == "stderr"
    assert (
        setup_logging("warning", "off", environ={"INVOCATION_ID": "x"}, stream=second) == "stderr"
    )
    log = logging.getLogger("edge.test")
    log.info("quiet")
    log.warning("loud")
    assert first.getvalue() == ""  # the first handler was replaced, not stacked
    [line] = second.getvalue().splitlines()
    assert line.endswith("WARNING edge.test: loud") and line[:4].isdigit()  # timestamped
    assert setup_logging("info", "on", environ={}, stream=second) == "stderr-priority"


@pytest.mark.usefixtures("restore_logging")
def test_journal_handler_when_systemd_python_is_installed() -> None:
    journal = pytest.importorskip("systemd.journal", reason="systemd-python is not installed")
    assert setup_logging("info", "on", environ={}) == "journal"
    assert any(isinstance(h, journal.JournalHandler) for h in logging.getLogger().handlers)


def test_syslog_priorities() -> None:
    levels = (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)
    assert [syslog_priority(level) for level in levels] == [2, 3, 4, 6, 7]
