"""Fixtures for the client library: an aiohttp session made here, the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from custom_components.kinesis_video.kvs import (
    AwsCredentials,
    KinesisVideoClient,
    RetryPolicy,
)
from kvs_emulator.testing import EmulatorProcess

FAST = RetryPolicy(retries=4, base_s=0.01, cap_s=0.05)
MISSING_ARN = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/nowhere/1700000000000"


def credentials(emulator: EmulatorProcess, **changes: Any) -> AwsCredentials:
    values = {
        "access_key_id": emulator.access_key,
        "secret_access_key": emulator.secret_key,
        "region": emulator.region,
        "endpoint_url": emulator.url,
    }
    return AwsCredentials(**{**values, **changes})


async def blocking[T](func: Callable[..., T], *args: Any) -> T:
    """Run blocking test helpers (urllib) off the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


async def admin(
    emulator: EmulatorProcess, method: str, path: str, body: dict[str, Any] | None
) -> Any:
    return await blocking(emulator.admin, method, path, body)


async def fault(emulator: EmulatorProcess, **rule: Any) -> None:
    await admin(emulator, "POST", "faults", rule)


async def counts(emulator: EmulatorProcess) -> dict[str, int]:
    result: dict[str, int] = (await blocking(emulator.calls))["counts"]
    return result


def aligned_range(minutes: int) -> tuple[datetime, datetime]:
    """An hour ago, off the 2 s fragment grid, so exactly minutes*30 starts fit."""
    end = datetime.now(UTC) - timedelta(hours=1)
    end = end.replace(second=end.second - end.second % 2, microsecond=500_000)
    return end - timedelta(minutes=minutes), end


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The session the client is given (Home Assistant passes its shared one)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_client(
    emulator: EmulatorProcess, http: aiohttp.ClientSession
) -> Callable[..., KinesisVideoClient]:
    """A client on the test's session; keyword arguments go to the client."""

    def make(**kwargs: Any) -> KinesisVideoClient:
        creds = kwargs.pop("credentials", None) or credentials(emulator)
        kwargs.setdefault("retry", FAST)
        return KinesisVideoClient(http, creds, **kwargs)

    return make


@pytest.fixture
async def client(
    make_client: Callable[..., KinesisVideoClient],
) -> AsyncIterator[KinesisVideoClient]:
    kvs = make_client()
    yield kvs
    await kvs.close()


@pytest.fixture
async def arns(client: KinesisVideoClient) -> dict[str, str]:
    return {stream.name: stream.arn for stream in await client.list_streams()}
