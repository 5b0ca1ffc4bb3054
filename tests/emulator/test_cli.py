"""The command line: ``python -m kvs_emulator``."""

from __future__ import annotations

import argparse
import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from kvs_emulator.__main__ import duration_ms, main, parse_args
from kvs_emulator.testing import REPO_ROOT

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


def test_exits_when_its_parent_is_killed(socket_enabled: None) -> None:
    """--exit-with-parent: a harness killed from outside leaves no emulator behind."""
    parent_code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-m', 'kvs_emulator', '--port', '0',"
        " '--streams', '', '--exit-with-parent'], stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()  # as a CI timeout would: no clean-up runs in the parent
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.2)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
