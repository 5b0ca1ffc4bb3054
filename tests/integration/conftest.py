"""Fixtures for the integration: config entries pointing at the emulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from aiohttp.resolver import ThreadedResolver
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kinesis_video.const import (
    CONF_ACCESS_KEY_ID,
    CONF_ENDPOINT_URL,
    CONF_HLS_CONTAINER,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STREAMS,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    DOMAIN,
)
from kvs_emulator.testing import EmulatorProcess

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/kinesis_video."""


@pytest.fixture(autouse=True)
def fresh_dns_resolver() -> Iterator[None]:
    """A host resolver per test for Home Assistant's shared aiohttp session.

    The client sends through async_get_clientsession(hass). The test plugin
    gives every test's hass one session-wide resolver, which Home Assistant
    2026.x closes with each hass: the next test that looks up a host name
    (an endpoint of ``localhost``) would fail. Resolving through the system
    (localhost only, under the plugin's socket guard) needs no mDNS.
    """

    def make(hass: HomeAssistant) -> ThreadedResolver:
        resolver = ThreadedResolver()  # on the loop, as Home Assistant asks
        resolver.real_close = resolver.close  # type: ignore[attr-defined]
        return resolver

    with patch(
        "homeassistant.helpers.aiohttp_client._async_make_resolver", side_effect=make
    ):
        yield


@pytest.fixture(autouse=True)
def no_retry_delay() -> Iterator[None]:
    """Retry at once.

    The API layer's back-off sleeps would stall under freezegun (the loop's clock
    is frozen) and slow the suite; the back-off itself is tested in tests/kvs.
    """
    with patch("custom_components.kinesis_video.kvs.RetryPolicy.delay", return_value=0):
        yield


@pytest.fixture(autouse=True)
def no_request_rate_limits_under_a_frozen_clock(request: pytest.FixtureRequest) -> None:
    """Tests that freeze Home Assistant's clock switch off the emulator's TPS limits.

    The emulator meters AWS's request rates on the real clock, while these tests
    fire minutes of polls within milliseconds and retry at once: whether a poll is
    throttled would depend on how fast the machine runs them, and a throttled
    burst can leave the pacer waiting on the frozen loop clock until the test
    times out. Pacing against the real limits is tested where time runs
    (tests/kvs).
    """
    if "freezer" in request.fixturenames and "emulator" in request.fixturenames:
        emulator: EmulatorProcess = request.getfixturevalue("emulator")
        emulator.admin("POST", "config", {"tps_limits": False})


def entry_data(emulator: EmulatorProcess) -> dict[str, Any]:
    """Config entry data for the emulator's keys."""
    return {
        CONF_ACCESS_KEY_ID: emulator.access_key,
        CONF_SECRET_ACCESS_KEY: emulator.secret_key,
        CONF_REGION: emulator.region,
        CONF_ENDPOINT_URL: emulator.url,
    }


@pytest.fixture
def stream_arns(emulator: EmulatorProcess) -> dict[str, str]:
    """Stream name -> ARN as the emulator made them (ARNs are stable across resets)."""
    client = boto3.client("kinesisvideo", **emulator.boto3_kwargs())
    return {
        s["StreamName"]: s["StreamARN"] for s in client.list_streams()["StreamInfoList"]
    }


@pytest.fixture
def config_entry(
    emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> MockConfigEntry:
    """An entry with both emulator streams."""
    # Tests that move Home Assistant's clock with freezegun also move the time
    # botocore signs with; let the emulator accept it (AWS allows 15 minutes).
    emulator.admin("POST", "config", {"max_skew_s": 7 * 86400})
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"AWS {ACCOUNT} ({REGION})",
        unique_id=f"{ACCOUNT}_{REGION}",
        data=entry_data(emulator),
        options={
            CONF_STREAMS: [stream_arns["front-door"], stream_arns["backyard"]],
            CONF_HLS_CONTAINER: "FRAGMENTED_MP4",
            CONF_URL_LIFETIME: 3600,
            CONF_TIMESTAMP_TYPE: "SERVER_TIMESTAMP",
        },
    )


@pytest.fixture
async def running(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    tmp_path: Path,
) -> MockConfigEntry:
    """The entry set up, with ``tmp_path`` writable and its media/ as media."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    await setup_entry(hass, config_entry)
    return config_entry


def files_in(folder: Path) -> list[Path]:
    """Every file below ``folder`` (none if it does not exist)."""
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def boto_fragments(
    emulator: EmulatorProcess,
    start: float | datetime,
    end: float | datetime,
    stream: str = "front-door",
) -> list[dict[str, Any]]:
    """Every fragment in [start, end] by plain boto3, sorted by server time.

    boto3 sends whole seconds: tests give it ranges of whole seconds.
    """
    client = boto3.client("kinesis-video-archived-media", **emulator.boto3_kwargs())
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "StreamName": stream,
        "MaxResults": 1000,
        "FragmentSelector": {
            "FragmentSelectorType": "SERVER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
        },
    }
    while True:
        response = client.list_fragments(**kwargs)
        found += response["Fragments"]
        if "NextToken" not in response:
            return sorted(found, key=lambda f: f["ServerTimestamp"])
        kwargs["NextToken"] = response["NextToken"]


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up ``entry``, waiting for its platforms."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def admin(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    method: str,
    path: str,
    body: Any = None,
) -> Any:
    """Call the emulator's admin API off the event loop."""
    return await hass.async_add_executor_job(emulator.admin, method, path, body)


async def emulator_key(
    hass: HomeAssistant, emulator: EmulatorProcess, **change: Any
) -> None:
    """Change the entry's key on the emulator: ``remove=True``, ``denied=[ops]``."""
    body = {"access_key": emulator.access_key, **change}
    await admin(hass, emulator, "POST", "credentials", body)


async def calls(
    hass: HomeAssistant, emulator: EmulatorProcess, stream: str | None = None
) -> dict[str, int]:
    """Counts of emulator calls by operation (only of ``stream``, if given)."""
    result = await hass.async_add_executor_job(emulator.calls)
    if stream is None:
        counts: dict[str, int] = result["counts"]
        return counts
    return dict(
        Counter(c["operation"] for c in result["calls"] if c["stream"] == stream)
    )
