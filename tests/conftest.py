"""Shared fixtures: the KVS emulator in a child process, reset for every test."""

from __future__ import annotations

import ctypes.util
import logging
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


def _import_camera_without_turbojpeg_noise() -> None:
    """Import the camera component's image helpers once, quietly if need be.

    They load libturbojpeg (a system library Home Assistant's images ship) at
    import and log a traceback when it is missing, then fall back to Pillow. On a
    machine without it that traceback would sit in every run's log; it says
    nothing about this integration, so only that one record is dropped.
    """
    if ctypes.util.find_library("turbojpeg") is not None:
        return
    img_util_logger = logging.getLogger("homeassistant.components.camera.img_util")
    previous = img_util_logger.disabled
    img_util_logger.disabled = True
    try:
        import homeassistant.components.camera.img_util  # noqa: F401
    finally:
        img_util_logger.disabled = previous


_import_camera_without_turbojpeg_noise()


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
