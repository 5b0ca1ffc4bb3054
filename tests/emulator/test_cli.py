"""The command line: ``python -m kvs_emulator``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from kvs_emulator.__main__ import duration_ms, main, parse_args
from kvs_emulator.testing import REPO_ROOT, EmulatorProcess

READY = re.compile(
    r"^KVS emulator ready at (?P<url>http://127\.0\.0\.1:(?P<port>\d+))"
    r" access_key=(?P<key>\S+) secret_key=(?P<secret>\S+) region=(?P<region>\S+)"
    r" streams=(?P<streams>\S+)$"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvs_emulator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _read_line(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """The first line on stdout, without hanging if none comes."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            return process.stdout.readline()
        if process.poll() is not None:
            break
    return ""


def _admin(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{url}/_emulator/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serves_until_sigterm(socket_enabled: None) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvs_emulator",
            "--port",
            "0",
            "--streams",
            "a,b",
            "--history",
            "5m",
            "--access-key",
            "K",
            "--secret-key",
            "S",
            # A killed test run must not leave this one behind either.
            "--exit-with-parent",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(process)
        match = READY.match(line.rstrip("\n"))
        assert match, line
        assert (match["key"], match["secret"], match["streams"]) == ("K", "S", "a,b")
        url = match["url"]
        port = int(match["port"])
        assert port > 0

        client_args = {
            "endpoint_url": url,
            "region_name": match["region"],
            "aws_access_key_id": "K",
            "aws_secret_access_key": "S",
        }
        kvs = boto3.client("kinesisvideo", **client_args)
        names = [s["StreamName"] for s in kvs.list_streams()["StreamInfoList"]]
        assert names == ["a", "b"]

        # Five minutes of history: 2 s fragments from the start of history up
        # to the (frozen) present.
        state = _admin(url, "state")
        now_ms = round(_admin(url, "clock", {"freeze": True})["now"] * 1000)
        start_ms = round(state["streams"][0]["history_start"] * 1000)
        assert now_ms - start_ms >= 300_000
        expected = (now_ms - 2000) // 2000 - -(-start_ms // 2000) + 1
        archived = boto3.client("kinesis-video-archived-media", **client_args)
        fragments = archived.list_fragments(StreamName="a", MaxResults=1000)
        assert "NextToken" not in fragments
        assert len(fragments["Fragments"]) == expected >= 149

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        assert process.stdout.read() == ""  # the ready line was the only one
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((urlsplit(url).hostname, port), timeout=5),
        ):
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_new_process_hands_out_the_same_arns(socket_enabled: None) -> None:
    """Restarted with the same streams, the emulator keeps their ARNs.

    The demo's Home Assistant keeps its config entry (it stores ARNs) across
    restarts of the emulator. The order on the command line does not matter.
    """

    def arns(process: EmulatorProcess) -> dict[str, str]:
        kvs = boto3.client("kinesisvideo", **process.boto3_kwargs())
        streams = kvs.list_streams()["StreamInfoList"]
        return {s["StreamName"]: s["StreamARN"] for s in streams}

    def create(process: EmulatorProcess, name: str) -> str:
        kvs = boto3.client("kinesisvideo", **process.boto3_kwargs())
        arn: str = kvs.create_stream(StreamName=name)["StreamARN"]
        return arn

    with EmulatorProcess("--streams", "a,b", "--history", "1m") as first:
        before = arns(first)
        created = create(first, "c")
    with EmulatorProcess("--streams", "b,a", "--history", "1m") as second:
        assert arns(second) == before
        assert create(second, "c") == created
    assert sorted(before) == ["a", "b"]
    assert len({*before.values(), created}) == 3


def test_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m kvs_emulator")
    for option in ("--port", "--streams", "--history", "--access-key", "--secret-key"):
        assert option in result.stdout


def test_bad_duration_is_rejected() -> None:
    result = _run("--port", "0", "--history", "5x")
    assert result.returncode == 2
    assert "argument --history: not a duration: '5x'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("bad", ["-5m", "m", "1h30m", "5w"])
def test_bad_durations_exit_with_usage(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--port", "0", f"--history={bad}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m kvs_emulator")
    assert f"not a duration: {bad!r}" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90_000),
        ("90s", 90_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1.5m", 90_000),
        (" 10m ", 600_000),
    ],
)
def test_duration_units(text: str, expected: int) -> None:
    assert duration_ms(text) == expected


def test_parse_args_defaults_and_options() -> None:
    args = parse_args([])
    assert args.port == 4567
    assert args.streams == "front-door,backyard"
    assert args.history == 7_200_000
    assert not args.no_tps_limits
    args = parse_args(["--history", "10m", "--no-tps-limits", "--padding-bytes", "8"])
    assert args.history == 600_000
    assert args.no_tps_limits
    assert args.padding_bytes == 8
    with pytest.raises(argparse.ArgumentTypeError):
        duration_ms("soon")


# The stand-in for a test run that starts an emulator: it runs some code, then
# waits for its stdin to close. Never a sleep: if this test run is killed, the
# stand-in must die with it (EOF), not keep its emulator alive for minutes.
_WAIT_FOR_EOF = "import sys\nsys.stdin.read()\n"


@contextlib.contextmanager
def _test_run(code: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start the stand-in; yield it and the words of the first line it prints."""
    process = subprocess.Popen(
        [sys.executable, "-c", code + _WAIT_FOR_EOF],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(process)
        assert line, "the stand-in test run printed nothing"
        yield process, line.split()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _wait_gone(pid: int, timeout: float = 30) -> bool:
    """Poll until ``pid`` has exited; whether it did within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    return not _alive(pid)


def _kill_if_alive(pid: int) -> None:
    """Leave no emulator behind when a test fails."""
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_exits_when_its_parent_is_killed(socket_enabled: None) -> None:
    """--exit-with-parent: a harness killed from outside leaves no emulator behind."""
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-m', 'kvs_emulator', '--port', '0',"
        " '--streams', '', '--exit-with-parent'], stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
    )
    emulator_pid = 0
    with _test_run(code) as (parent, words):
        try:
            emulator_pid = int(words[0])
            parent.kill()  # as a CI timeout would: no clean-up runs in the parent
            parent.wait()
            assert _wait_gone(emulator_pid)
        finally:
            _kill_if_alive(emulator_pid)


def test_exits_cleanly_when_its_parent_dies_while_it_starts(
    socket_enabled: None,
) -> None:
    """The parent may die before the emulator is ready (a busy machine).

    The emulator took its parent's pid only once it served: a parent that died
    during the start-up (imports, the media pool: seconds on a busy machine) was
    never missed, and the emulator lived on (the harness's pipe broke its ready
    line by luck; with stdout elsewhere it served forever). SIGSTOP pins the
    emulator in its start-up until the parent is dead.
    """
    code = (
        "import os, signal, threading, time\n"
        "from kvs_emulator.testing import EmulatorProcess\n"
        "emulator = EmulatorProcess('--streams', '')\n"
        "threading.Thread(target=emulator.start, daemon=True).start()\n"
        "while emulator._process is None:\n"
        "    time.sleep(0.001)\n"
        "os.kill(emulator.pid, signal.SIGSTOP)\n"
        "print(emulator.pid, emulator._log.name, flush=True)\n"
    )
    emulator_pid = 0
    log = Path()
    try:
        with _test_run(code) as (parent, words):
            emulator_pid, log = int(words[0]), Path(words[1])
            parent.kill()  # as a CI timeout would: no clean-up runs in the parent
            parent.wait()
            os.kill(emulator_pid, signal.SIGCONT)
            assert _wait_gone(emulator_pid)
        # It stopped as it meant to (no broken-pipe crash on its ready line).
        stderr = log.read_text(encoding="utf-8")
        assert f"Parent process {parent.pid} is gone: stopping" in stderr
        assert "Traceback" not in stderr
    finally:
        _kill_if_alive(emulator_pid)
        if log.name:
            log.unlink(missing_ok=True)


def test_outlives_the_thread_that_started_it(socket_enabled: None) -> None:
    """Linux's parent-death signal also fires when the starting *thread* exits.

    A harness started from a worker thread (an executor job) must keep its
    emulator while the process lives, and lose it when the process dies.
    """
    code = (
        "import os, threading, time\n"
        "from kvs_emulator.testing import EmulatorProcess\n"
        "emulator = EmulatorProcess('--streams', '')\n"
        "worker = threading.Thread(target=emulator.start)\n"
        "worker.start()\n"
        "worker.join()\n"
        "while len(os.listdir('/proc/self/task')) > 1:  # the thread has exited\n"
        "    time.sleep(0.01)\n"
        "print(emulator.pid, emulator.url, flush=True)\n"
    )
    emulator_pid = 0
    with _test_run(code) as (parent, words):
        try:
            emulator_pid, url = int(words[0]), words[1]
            # The signal came when the thread exited; the emulator still serves.
            for _ in range(3):
                assert _admin(url, "state")["streams"] == []
            assert _alive(emulator_pid)

            parent.kill()
            parent.wait()
            assert _wait_gone(emulator_pid)
        finally:
            _kill_if_alive(emulator_pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
