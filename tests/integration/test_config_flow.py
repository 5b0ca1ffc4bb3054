"""Config flow, reauth, reconfigure and options, against the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kinesis_video.config_flow import CONF_MANUAL_ARNS, _normalized
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

from .conftest import (
    ACCOUNT,
    REGION,
    admin,
    calls,
    emulator_key,
    entry_data,
    setup_entry,
)


async def _start(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return str(result["flow_id"])


async def test_full_flow(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """Keys are checked, listed streams offered, chosen ones stored by ARN."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(emulator)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "streams"
    assert result["description_placeholders"]["count"] == "2"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_STREAMS: [stream_arns["backyard"]]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"AWS {ACCOUNT} ({REGION})"
    assert result["data"] == entry_data(emulator)
    assert result["options"][CONF_STREAMS] == [stream_arns["backyard"]]
    entry = result["result"]
    assert entry.unique_id == f"{ACCOUNT}_{REGION}"
    await hass.async_block_till_done()
    assert hass.states.get("camera.backyard") is not None
    assert hass.states.get("camera.front_door") is None


async def test_wrong_secret_is_invalid_auth(
    hass: HomeAssistant, emulator: EmulatorProcess
) -> None:
    """A refused signature shows invalid_auth; fixing it goes on."""
    flow_id = await _start(hass)
    bad = {**entry_data(emulator), CONF_SECRET_ACCESS_KEY: "not-the-secret"}
    result = await hass.config_entries.flow.async_configure(flow_id, bad)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(emulator)
    )
    assert result["step_id"] == "streams"


async def test_unknown_key_is_invalid_auth(
    hass: HomeAssistant, emulator: EmulatorProcess
) -> None:
    """An access key AWS does not know is invalid_auth too."""
    flow_id = await _start(hass)
    bad = {**entry_data(emulator), CONF_ACCESS_KEY_ID: "AKIAUNKNOWN000000000"}
    result = await hass.config_entries.flow.async_configure(flow_id, bad)
    assert result["errors"] == {"base": "invalid_auth"}


async def test_unreachable_is_cannot_connect(
    hass: HomeAssistant, emulator: EmulatorProcess, unused_tcp_port: int
) -> None:
    """Nothing listening at the endpoint: cannot_connect."""
    flow_id = await _start(hass)
    bad = {
        **entry_data(emulator),
        CONF_ENDPOINT_URL: f"http://127.0.0.1:{unused_tcp_port}",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, bad)
    assert result["errors"] == {"base": "cannot_connect"}


async def test_bad_endpoint_url(hass: HomeAssistant, emulator: EmulatorProcess) -> None:
    """An endpoint that is not a URL is refused before any call."""
    flow_id = await _start(hass)
    bad = {**entry_data(emulator), CONF_ENDPOINT_URL: "kinesis.local"}
    result = await hass.config_entries.flow.async_configure(flow_id, bad)
    assert result["errors"] == {CONF_ENDPOINT_URL: "invalid_endpoint"}


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant, emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug (not an AWS error) shows unknown and is logged.

    Mocked: the emulator only produces AWS-shaped errors, never a Python bug.
    """
    flow_id = await _start(hass)
    with patch(
        "custom_components.kinesis_video.config_flow.KinesisVideoClient.list_streams",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, entry_data(emulator)
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking AWS credentials" in caplog.text
    assert "RuntimeError: boom" in caplog.text


async def test_service_error_is_cannot_connect(
    hass: HomeAssistant, emulator: EmulatorProcess
) -> None:
    """The service failing (5xx, every retry) is cannot_connect."""
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "ListStreams", "error": "InternalFailure", "count": 20},
    )
    flow_id = await _start(hass)
    with patch("custom_components.kinesis_video.kvs.RetryPolicy.delay", return_value=0):
        result = await hass.config_entries.flow.async_configure(
            flow_id, entry_data(emulator)
        )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_streams_by_arn_when_listing_is_denied(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """Keys that may not list streams can still add streams by ARN."""
    await emulator_key(hass, emulator, denied=["ListStreams"])
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(emulator)
    )
    assert result["step_id"] == "streams"
    assert result["description_placeholders"]["count"] == "0"
    # Nothing chosen: an error, not an empty entry.
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["errors"] == {"base": "no_streams"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: "not-an-arn"}
    )
    assert result["errors"] == {CONF_MANUAL_ARNS: "invalid_arn"}
    other_region = stream_arns["front-door"].replace(REGION, "eu-west-1")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: other_region}
    )
    assert result["errors"] == {CONF_MANUAL_ARNS: "wrong_region"}
    missing = stream_arns["front-door"].replace("front-door", "no-such-stream")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: missing}
    )
    assert result["errors"] == {CONF_MANUAL_ARNS: "stream_not_found"}
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {CONF_MANUAL_ARNS: f"{stream_arns['front-door']}\n{stream_arns['backyard']}"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_STREAMS] == [
        stream_arns["front-door"],
        stream_arns["backyard"],
    ]


async def test_mixed_accounts_refused(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """Streams of two accounts cannot share one entry."""
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, entry_data(emulator))
    foreign = stream_arns["backyard"].replace(ACCOUNT, "999999999999")
    with patch(
        "custom_components.kinesis_video.config_flow.KinesisVideoClient.describe_stream"
    ) as describe:
        # The emulator has one account; a foreign stream can only be faked.
        describe.return_value.arn = foreign
        result = await hass.config_entries.flow.async_configure(
            flow_id,
            {CONF_STREAMS: [stream_arns["front-door"]], CONF_MANUAL_ARNS: foreign},
        )
    assert result["errors"] == {"base": "mixed_accounts"}


async def test_already_configured(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """A second entry for the same account and region aborts."""
    config_entry.add_to_hass(hass)
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, entry_data(emulator))
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_STREAMS: [stream_arns["backyard"]]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Rotated keys: the entry starts reauth, new keys of the same account fix it."""
    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {"access_key": "AKIANEWKEY0000000001", "secret_key": "new-secret"},
    )
    await emulator_key(hass, emulator, remove=True)
    await setup_entry(hass, config_entry)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_ACCESS_KEY_ID: emulator.access_key,
            CONF_SECRET_ACCESS_KEY: "still-wrong",
        },
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_ACCESS_KEY_ID: "AKIANEWKEY0000000001",
            CONF_SECRET_ACCESS_KEY: "new-secret",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_ACCESS_KEY_ID] == "AKIANEWKEY0000000001"
    await hass.async_block_till_done()
    assert hass.states.get("camera.front_door") is not None


async def test_reauth_other_account_aborts(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Keys that list another account's streams cannot take over the entry.

    Mocked listing: reauth keeps the entry's endpoint and one emulator serves one
    account, so a second account's streams can only be faked here (the real
    second-account case is covered by test_reconfigure_other_account_aborts).
    """
    await setup_entry(hass, config_entry)
    foreign = config_entry.options[CONF_STREAMS][0].replace(ACCOUNT, "999999999999")
    result = await config_entry.start_reauth_flow(hass)
    with patch(
        "custom_components.kinesis_video.config_flow.KinesisVideoClient.list_streams"
    ) as list_streams:
        list_streams.return_value = [type("Info", (), {"arn": foreign})()]
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_ACCESS_KEY_ID: emulator.access_key,
                CONF_SECRET_ACCESS_KEY: emulator.secret_key,
            },
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


async def test_reconfigure_other_account_aborts(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """An endpoint and keys that reach another AWS account are refused."""
    await setup_entry(hass, config_entry)
    result = await config_entry.start_reconfigure_flow(hass)
    with EmulatorProcess(
        "--streams", "garage", "--account-id", "999999999999"
    ) as other:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], entry_data(other)
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account_or_region"
    assert config_entry.data == entry_data(emulator)


async def test_reconfigure(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """New keys or endpoint for the same account and region."""
    await setup_entry(hass, config_entry)
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    bad = {**entry_data(emulator), CONF_SECRET_ACCESS_KEY: "wrong"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], bad)
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(emulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()  # the reload it started


def _entry_in(
    region: str, emulator: EmulatorProcess, arns: list[str]
) -> MockConfigEntry:
    """An entry of the emulator's account as if it were in ``region``."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"AWS {ACCOUNT} ({region})",
        unique_id=f"{ACCOUNT}_{region}",
        data={**entry_data(emulator), CONF_REGION: region},
        options={
            CONF_STREAMS: [a.replace(REGION, region) for a in arns],
            CONF_HLS_CONTAINER: "FRAGMENTED_MP4",
            CONF_URL_LIFETIME: 3600,
            CONF_TIMESTAMP_TYPE: "SERVER_TIMESTAMP",
        },
    )


async def test_reconfigure_to_another_region_picks_its_streams(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """A new region has other streams: they are chosen, the entry moves there.

    The emulator serves one region (us-east-1); the entry starts out as if it
    were in eu-west-1 (its streams are not found there) and moves to us-east-1.
    """
    entry = _entry_in("eu-west-1", emulator, list(stream_arns.values()))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(emulator)
    )
    assert result["step_id"] == "streams"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STREAMS: [stream_arns["front-door"]]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.unique_id == f"{ACCOUNT}_{REGION}"
    assert entry.title == f"AWS {ACCOUNT} ({REGION})"
    assert entry.data[CONF_REGION] == REGION
    assert entry.options[CONF_STREAMS] == [stream_arns["front-door"]]
    assert entry.options[CONF_URL_LIFETIME] == 3600  # other options kept
    # The old region's devices are gone; the new stream's camera works.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert [d.name for d in devices] == ["front-door"]
    assert hass.states.get("camera.front_door").state == "idle"


async def test_reconfigure_to_a_region_configured_elsewhere_aborts(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """Moving onto an account and region another entry has: already configured."""
    config_entry.add_to_hass(hass)  # us-east-1, not set up
    entry = _entry_in("eu-west-1", emulator, list(stream_arns.values()))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(emulator)
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STREAMS: [stream_arns["front-door"]]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.unique_id == f"{ACCOUNT}_eu-west-1"


async def test_options_add_and_remove_streams(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """Removing a stream drops its device; adding one brings a camera, no restart."""
    await setup_entry(hass, config_entry)
    devices = dr.async_get(hass)
    assert len(dr.async_entries_for_config_entry(devices, config_entry.entry_id)) == 2
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STREAMS: [stream_arns["front-door"]],
            CONF_HLS_CONTAINER: "mpeg_ts",
            CONF_URL_LIFETIME: 600,
            CONF_TIMESTAMP_TYPE: "producer_timestamp",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The form speaks lowercase translation keys; the options keep AWS's spelling.
    assert config_entry.options[CONF_HLS_CONTAINER] == "MPEG_TS"
    assert config_entry.options[CONF_TIMESTAMP_TYPE] == "PRODUCER_TIMESTAMP"
    assert config_entry.options[CONF_URL_LIFETIME] == 600
    remaining = dr.async_entries_for_config_entry(devices, config_entry.entry_id)
    assert [d.name for d in remaining] == ["front-door"]
    assert hass.states.get("camera.backyard") is None or (
        hass.states.get("camera.backyard").state == "unavailable"
    )

    await admin(hass, emulator, "POST", "streams", {"name": "garage", "history": 60})
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    listed = {
        o["value"] for o in result["data_schema"].schema[CONF_STREAMS].config["options"]
    }
    garage = next(a for a in listed if "/garage/" in a)
    shown = result["data_schema"]({})
    assert shown[CONF_HLS_CONTAINER] == "mpeg_ts"
    assert shown[CONF_TIMESTAMP_TYPE] == "producer_timestamp"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STREAMS: [stream_arns["front-door"], garage],
            CONF_HLS_CONTAINER: "fragmented_mp4",
            CONF_URL_LIFETIME: 3600,
            CONF_TIMESTAMP_TYPE: "server_timestamp",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hass.states.get("camera.garage") is not None
    names = {
        d.name
        for d in dr.async_entries_for_config_entry(devices, config_entry.entry_id)
    }
    assert names == {"front-door", "garage"}


async def test_options_errors(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """Typed ARNs are checked in the options too; nothing chosen is refused."""
    await setup_entry(hass, config_entry)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    base = {
        CONF_HLS_CONTAINER: "fragmented_mp4",
        CONF_URL_LIFETIME: 3600,
        CONF_TIMESTAMP_TYPE: "server_timestamp",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, CONF_STREAMS: []}
    )
    assert result["errors"] == {"base": "no_streams"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, CONF_STREAMS: [], CONF_MANUAL_ARNS: "arn:aws:nope"}
    )
    assert result["errors"] == {CONF_MANUAL_ARNS: "invalid_arn"}


@pytest.mark.parametrize("denied", [True])
async def test_options_when_listing_fails(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
    denied: bool,
) -> None:
    """Keys that may not list: the configured streams stay choosable."""
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, denied=["ListStreams"])
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    offered = {
        o["value"] for o in result["data_schema"].schema[CONF_STREAMS].config["options"]
    }
    assert offered == set(config_entry.options[CONF_STREAMS])


async def test_malformed_region_is_cannot_connect(
    hass: HomeAssistant, emulator: EmulatorProcess
) -> None:
    """A typed region the client cannot be set up for is refused on the form."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data(emulator), CONF_REGION: "not a region!"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_typed_arn_auth_and_service_errors(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """A typed ARN the key may not describe, or a failing service, shows on the form."""
    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {
            "access_key": emulator.access_key,
            "denied": ["ListStreams", "DescribeStream"],
        },
    )
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(emulator)
    )
    assert result["step_id"] == "streams"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: stream_arns["front-door"]}
    )
    assert result["errors"] == {CONF_MANUAL_ARNS: "describe_denied"}
    await emulator_key(hass, emulator, denied=["ListStreams"])
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "DescribeStream", "error": "InternalFailure", "count": 20},
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: stream_arns["front-door"]}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    await admin(hass, emulator, "DELETE", "faults")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: stream_arns["front-door"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def _reauth_flow_with_key_that_cannot_list(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> str:
    """Rotate to a key without ListStreams and start the entry's reauth flow."""
    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {
            "access_key": "AKIANOLIST0000000001",
            "secret_key": "no-list-secret",
            "denied": ["ListStreams"],
        },
    )
    await emulator_key(hass, emulator, remove=True)
    await setup_entry(hass, config_entry)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    return str(flows[0]["flow_id"])


async def test_reauth_with_key_that_cannot_list(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Without ListStreams the new key proves its account on a configured stream."""
    flow_id = await _reauth_flow_with_key_that_cannot_list(hass, emulator, config_entry)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_ACCESS_KEY_ID: "AKIANOLIST0000000001",
            CONF_SECRET_ACCESS_KEY: "no-list-secret",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_ACCESS_KEY_ID] == "AKIANOLIST0000000001"
    await hass.async_block_till_done()  # the reload it started


@pytest.mark.parametrize(
    ("denied", "stream_deleted", "error"),
    [
        (["ListStreams", "DescribeStream"], False, "describe_denied"),
        (["ListStreams"], True, "stream_not_found"),
    ],
)
async def test_reauth_with_key_that_cannot_list_or_see_the_stream(  # noqa: PLR0917 - fixtures
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    denied: list[str],
    stream_deleted: bool,
    error: str,
) -> None:
    """A key that cannot describe the entry's stream cannot prove the account."""
    flow_id = await _reauth_flow_with_key_that_cannot_list(hass, emulator, config_entry)
    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {"access_key": "AKIANOLIST0000000001", "denied": denied},
    )
    if stream_deleted:
        kvs = boto3.client(
            "kinesisvideo",
            **{
                **emulator.boto3_kwargs(),
                "aws_access_key_id": "AKIANOLIST0000000001",
                "aws_secret_access_key": "no-list-secret",
            },
        )
        arn = config_entry.options[CONF_STREAMS][0]
        await hass.async_add_executor_job(lambda: kvs.delete_stream(StreamARN=arn))
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_ACCESS_KEY_ID: "AKIANOLIST0000000001",
            CONF_SECRET_ACCESS_KEY: "no-list-secret",
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


async def test_pasted_spaces_are_not_stored(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """Keys pasted with spaces or a newline work, and are stored clean."""
    flow_id = await _start(hass)
    data = entry_data(emulator)
    padded = {
        CONF_ACCESS_KEY_ID: f" {data[CONF_ACCESS_KEY_ID]}\n",
        CONF_SECRET_ACCESS_KEY: f"{data[CONF_SECRET_ACCESS_KEY]} ",
        CONF_REGION: f"{data[CONF_REGION]} ",
        CONF_ENDPOINT_URL: f" {data[CONF_ENDPOINT_URL]} ",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, padded)
    assert result["step_id"] == "streams"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_STREAMS: [stream_arns["backyard"]]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == data
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_options_of_an_entry_that_is_not_loaded(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """An entry waiting for new keys cannot change its streams yet: a clear abort."""
    await emulator_key(hass, emulator, remove=True)
    await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"


def test_normalized_drops_an_empty_endpoint() -> None:
    """No endpoint (AWS itself) is stored as no key at all, not as spaces."""
    assert _normalized(
        {
            CONF_ACCESS_KEY_ID: " AKIA1 ",
            CONF_SECRET_ACCESS_KEY: "secret\n",
            CONF_REGION: "eu-west-1",
            CONF_ENDPOINT_URL: "   ",
        }
    ) == {
        CONF_ACCESS_KEY_ID: "AKIA1",
        CONF_SECRET_ACCESS_KEY: "secret",
        CONF_REGION: "eu-west-1",
    }


def _old_clock(hours: float = 1) -> Any:
    """Sign requests as if Home Assistant's clock were ``hours`` behind.

    botocore takes the signing time from this function; the emulator checks it
    against the real time as AWS does.
    """
    wrong = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=hours)
    return patch("botocore.auth.get_current_datetime", return_value=wrong)


async def _aws_time_window(hass: HomeAssistant, emulator: EmulatorProcess) -> None:
    """The signing-time window AWS allows (the config_entry fixture widens it)."""
    await admin(hass, emulator, "POST", "config", {"max_skew_s": 300})


@pytest.mark.parametrize("source", ["user", "reauth", "reconfigure"])
async def test_secret_is_never_sent_back(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    source: str,
) -> None:
    """After an error the form comes back filled in, but never with a secret.

    Read as the browser gets it, through the config flow HTTP API.
    """
    # Everything that registers HTTP views first: the client freezes the router.
    if source == "user":
        assert await async_setup_component(hass, DOMAIN, {})
    else:
        await setup_entry(hass, config_entry)
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    typed = {
        CONF_ACCESS_KEY_ID: "AKIATYPED00000000001",
        CONF_SECRET_ACCESS_KEY: "typed-secret-never-echoed",
    }
    if source == "user":
        response = await client.post(
            "/api/config/config_entries/flow", json={"handler": DOMAIN}
        )
        typed = {**entry_data(emulator), **typed}
    else:
        if source == "reauth":
            result = await config_entry.start_reauth_flow(hass)
        else:
            result = await config_entry.start_reconfigure_flow(hass)
            typed = {**entry_data(emulator), **typed}
        response = await client.get(
            f"/api/config/config_entries/flow/{result['flow_id']}"
        )
    first = await response.text()
    flow_id = json.loads(first)["flow_id"]
    response = await client.post(
        f"/api/config/config_entries/flow/{flow_id}", json=typed
    )
    assert response.status == HTTPStatus.OK
    body = await response.text()
    form = json.loads(body)
    assert form["errors"] == {"base": "invalid_auth"}
    for text in (first, body):
        assert typed[CONF_SECRET_ACCESS_KEY] not in text
        assert emulator.secret_key not in text
    fields = {field["name"]: field for field in form["data_schema"]}
    assert fields[CONF_ACCESS_KEY_ID]["default"] == "AKIATYPED00000000001"
    assert "default" not in fields[CONF_SECRET_ACCESS_KEY]
    if source != "reauth":
        assert fields[CONF_REGION]["default"] == REGION
        assert fields[CONF_ENDPOINT_URL]["description"] == {
            "suggested_value": emulator.url
        }


@pytest.mark.parametrize(
    "endpoint",
    [
        "kinesis.local",
        "ftp://127.0.0.1",
        "http://",
        "https://user:password@kinesisvideo.us-east-1.amazonaws.com",
        "https://kinesisvideo.us-east-1.amazonaws.com/prefix",
        "https://kinesisvideo.us-east-1.amazonaws.com/?x=1",
        "https://kinesisvideo.us-east-1.amazonaws.com#part",
        "http://[::1",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
    ],
)
async def test_endpoint_that_is_not_a_plain_url(
    hass: HomeAssistant, emulator: EmulatorProcess, endpoint: str
) -> None:
    """Scheme, host and port only: no credentials, path, query or fragment."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data(emulator), CONF_ENDPOINT_URL: endpoint}
    )
    assert result["errors"] == {CONF_ENDPOINT_URL: "invalid_endpoint"}
    assert await calls(hass, emulator) == {}


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254",
        "http://169.254.169.254.",
        "http://169.254.170.2/",
        "HTTP://2852039166",  # 169.254.169.254 as one number
        "http://0xa9fea9fe",
        "http://[fd00:ec2::254]",
        "http://[FD00:EC2::254]:80/",
        "https://[fe80::1]:8443",
        "http://[::ffff:169.254.169.254]",
        "http://instance-data",
        "http://Instance-Data.ec2.internal.",
        "http://metadata.google.internal",
        "http://metadata",  # GCE's short name
        "http://[fd00:ec2::254%25eth0]",  # with an IPv6 zone
        "http://[fe80::1%eth0]",
        "http://[64:ff9b::a9fe:a9fe]",  # 169.254.169.254 through NAT64
        "http://100.100.100.200",  # Alibaba Cloud's metadata service
    ],
)
async def test_endpoint_of_the_instance_metadata_service(
    hass: HomeAssistant, emulator: EmulatorProcess, endpoint: str
) -> None:
    """Link-local and cloud metadata addresses are refused before any call.

    The key would be signed into a request to them, and their answers are
    not Kinesis Video Streams'.
    """
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data(emulator), CONF_ENDPOINT_URL: endpoint}
    )
    assert result["errors"] == {CONF_ENDPOINT_URL: "endpoint_not_allowed"}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("HTTP://127.0.0.1:{port}/", "http://127.0.0.1:{port}/"),
        ("Http://localhost:{port}", "http://localhost:{port}"),
    ],
)
async def test_endpoint_scheme_in_capitals(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    stream_arns: dict[str, str],
    typed: str,
    stored: str,
) -> None:
    """``HTTP://`` is a URL too; it is stored in lower case."""
    port = emulator.url.rsplit(":", 1)[1]
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data(emulator), CONF_ENDPOINT_URL: typed.format(port=port)}
    )
    assert result["step_id"] == "streams"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_STREAMS: [stream_arns["backyard"]]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENDPOINT_URL] == stored.format(port=port)


async def test_clock_skew_is_not_invalid_auth(
    hass: HomeAssistant, emulator: EmulatorProcess
) -> None:
    """A request time AWS refuses points at the clock, not at the key."""
    await _aws_time_window(hass, emulator)
    flow_id = await _start(hass)
    with _old_clock():
        result = await hass.config_entries.flow.async_configure(
            flow_id, entry_data(emulator)
        )
    assert result["errors"] == {"base": "clock_skew"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, entry_data(emulator)
    )
    assert result["step_id"] == "streams"


async def test_reauth_with_clock_skew(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """During reauth too, a refused request time is the clock's fault."""
    await setup_entry(hass, config_entry)
    await _aws_time_window(hass, emulator)
    result = await config_entry.start_reauth_flow(hass)
    with _old_clock(hours=-1):  # ahead works the same
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_ACCESS_KEY_ID: emulator.access_key,
                CONF_SECRET_ACCESS_KEY: emulator.secret_key,
            },
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "clock_skew"}


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("InternalFailure", "cannot_connect"),
        ("ThrottlingException", "throttled"),
        ("ClientLimitExceededException", "throttled"),
    ],
)
async def test_reauth_describe_failure_is_not_invalid_auth(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    error: str,
    shown: str,
) -> None:
    """A key that cannot list proves itself with DescribeStream; if that call
    fails for another reason than the key, the form says so."""
    flow_id = await _reauth_flow_with_key_that_cannot_list(hass, emulator, config_entry)
    await admin(
        hass,
        emulator,
        "POST",
        "faults",
        {"operation": "DescribeStream", "error": error, "count": 20},
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_ACCESS_KEY_ID: "AKIANOLIST0000000001",
            CONF_SECRET_ACCESS_KEY: "no-list-secret",
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": shown}


async def test_typed_arn_after_the_key_was_revoked(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """The key deleted between the two steps: invalid_auth on the streams form."""
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, entry_data(emulator))
    await emulator_key(hass, emulator, remove=True)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_MANUAL_ARNS: stream_arns["front-door"]}
    )
    assert result["step_id"] == "streams"
    assert result["errors"] == {"base": "invalid_auth"}


async def test_typed_arn_also_chosen_is_stored_once(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """A stream both ticked and typed in is one stream."""
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, entry_data(emulator))
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_STREAMS: [stream_arns["backyard"]],
            CONF_MANUAL_ARNS: f"{stream_arns['backyard']}, {stream_arns['backyard']}",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_STREAMS] == [stream_arns["backyard"]]


async def test_reconfigure_to_another_region_with_a_wrong_secret(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """A region change checks the key first; a refused one stays on the form."""
    entry = _entry_in("eu-west-1", emulator, list(stream_arns.values()))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**entry_data(emulator), CONF_SECRET_ACCESS_KEY: "wrong"},
    )
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_REGION] == "eu-west-1"


async def test_reconfigure_to_another_region_of_another_account(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """Streams of the new region that belong to another account are refused."""
    entry = _entry_in("eu-west-1", emulator, list(stream_arns.values()))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    with EmulatorProcess(
        "--streams", "garage", "--account-id", "999999999999"
    ) as other:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], entry_data(other)
        )
        assert result["step_id"] == "streams"
        (garage,) = (
            o["value"]
            for o in result["data_schema"].schema[CONF_STREAMS].config["options"]
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_STREAMS: [garage]}
        )
    assert result["step_id"] == "streams"
    assert result["errors"] == {"base": "wrong_account"}
    assert entry.unique_id == f"{ACCOUNT}_eu-west-1"


async def test_reauth_of_an_entry_without_streams(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """No stream to prove the account on and none listed: the key is taken.

    An entry keeps no streams once the devices of deleted streams are removed.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=config_entry.data,
        options={**config_entry.options, CONF_STREAMS: []},
    )
    entry.add_to_hass(hass)
    await admin(
        hass,
        emulator,
        "POST",
        "credentials",
        {
            "access_key": "AKIANOLIST0000000001",
            "secret_key": "no-list-secret",
            "denied": ["ListStreams"],
        },
    )
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: "AKIANOLIST0000000001",
            CONF_SECRET_ACCESS_KEY: "no-list-secret",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_ACCESS_KEY_ID] == "AKIANOLIST0000000001"
    await hass.async_block_till_done()  # the reload it started


async def test_options_with_streams_of_another_account(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """An entry whose key now reaches another account cannot take its streams.

    That happens after reauth of an entry without streams (nothing to check the
    account against): here the entry is of account 999999999999.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="AWS 999999999999 (us-east-1)",
        unique_id=f"999999999999_{REGION}",
        data=entry_data(emulator),
        options={**config_entry.options, CONF_STREAMS: []},
    )
    await setup_entry(hass, entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **result["data_schema"]({}),
            CONF_STREAMS: [stream_arns["backyard"]],
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_account"}


async def test_options_unchanged_do_not_reload(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Saving the options as they are keeps the running entry as it is."""
    await setup_entry(hass, config_entry)
    running = config_entry.runtime_data
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    # Submitted as the form shows them (its defaults are the stored options).
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], result["data_schema"]({})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data is running


async def test_setup_with_clock_skew_does_not_start_reauth(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """A wrong clock at start-up is retried; new keys would not fix it."""
    await _aws_time_window(hass, emulator)
    with _old_clock():
        await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_reauth_with_an_endpoint_refused_since(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """An endpoint stored before paths were refused: said at the top of the form.

    Reauth shows no endpoint field to put the error on; reconfigure changes it.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data={**config_entry.data, CONF_ENDPOINT_URL: f"{emulator.url}/kvs"},
        options=config_entry.options,
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_ACCESS_KEY_ID: emulator.access_key,
            CONF_SECRET_ACCESS_KEY: emulator.secret_key,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_endpoint"}
