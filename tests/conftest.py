"""Shared fixtures: the KVS emulator in a child process, reset for every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

# Home Assistant must find this package (not the harness's own custom_components)
# before the hass fixture runs: importing it here registers the path.
import custom_components.kinesis_video  # noqa: F401
from kvs_emulator.testing import EmulatorProcess

EMULATOR_STREAMS = "front-door,backyard"


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[EmulatorProcess]:
    """One emulator for the whole run (start-up encodes the media pool once)."""
    with EmulatorProcess(
        "--streams", EMULATOR_STREAMS, "--history", "2h", python=sys.executable
    ) as process:
        yield process


@pytest.fixture
def emulator(
    emulator_process: EmulatorProcess, socket_enabled: None
) -> EmulatorProcess:
    """The emulator, reset to its start-up state; loopback sockets allowed."""
    emulator_process.reset()
    return emulator_process


@pytest.fixture
def kvs(emulator: EmulatorProcess) -> Any:
    """A plain boto3 control-plane client pointed at the emulator."""
    return boto3.client("kinesisvideo", **emulator.boto3_kwargs())


@pytest.fixture
def archived(emulator: EmulatorProcess) -> Any:
    """A plain boto3 archived-media client pointed at the emulator."""
    return boto3.client("kinesis-video-archived-media", **emulator.boto3_kwargs())
