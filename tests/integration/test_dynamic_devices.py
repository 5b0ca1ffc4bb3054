"""Streams created in the account later: followed, or offered by a repair."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kinesis_video.const import (
    CONF_HLS_CONTAINER,
    CONF_STREAMS,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    DOMAIN,
    STATUS_POLL_INTERVAL,
)
from custom_components.kinesis_video.coordinator import (
    CONF_FOLLOW_ALL,
    CONF_KNOWN_UNTIL,
    known_until,
    new_stream_issue_id,
)
from kvs_emulator.testing import EmulatorProcess

from .conftest import admin, calls, emulator_key, entry_data, setup_entry


async def _create(hass: HomeAssistant, kvs: Any, name: str) -> str:
    """Create a stream in the account, as its owner would (boto3); its ARN."""
    created = await hass.async_add_executor_job(
        partial(kvs.create_stream, StreamName=name, DataRetentionInHours=24)
    )
    arn: str = created["StreamARN"]
    return arn


async def _delete(hass: HomeAssistant, kvs: Any, arn: str) -> None:
    await hass.async_add_executor_job(partial(kvs.delete_stream, StreamARN=arn))


async def _next_status_poll(hass: HomeAssistant) -> None:
    """Let the 5-minute status poll (and the health polls due by then) run."""
    async_fire_time_changed(
        hass, dt_util.utcnow() + STATUS_POLL_INTERVAL + timedelta(seconds=1)
    )
    await hass.async_block_till_done(wait_background_tasks=True)


def _device(hass: HomeAssistant, arn: str) -> dr.DeviceEntry | None:
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next((d for d in devices if (DOMAIN, arn) in d.identifiers), None)


def _issue(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> Any:
    issue_id = new_stream_issue_id(entry.entry_id, name)
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


def _following(entry: MockConfigEntry) -> MockConfigEntry:
    """``entry`` with the option on."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data=entry.data,
        options={**entry.options, CONF_FOLLOW_ALL: True},
    )


async def _fix(hass: HomeAssistant, issue_id: str, answer: dict[str, Any]) -> Any:
    """Run a repair's fix flow as the Repairs panel does."""
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    if result["type"] is not FlowResultType.FORM:
        return result
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"] == {"stream": "garage"}
    return await manager.async_configure(result["flow_id"], answer)


async def test_followed_account_adds_and_drops_streams_without_reload(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """A new stream gets its device and entities at the next poll; a deleted goes."""
    entry = _following(config_entry)
    await setup_entry(hass, entry)
    running = entry.runtime_data
    assert hass.states.get("camera.garage") is None

    garage = await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    assert entry.runtime_data is running  # no reload
    assert garage in entry.options[CONF_STREAMS]
    assert _device(hass, garage) is not None
    assert hass.states.get("camera.garage") is not None
    assert hass.states.get("sensor.garage_data_retention").state == "24"
    # Its health poll started at once: no video yet, so not receiving.
    assert hass.states.get("binary_sensor.garage_receiving_video").state == "off"
    assert _issue(hass, entry, "garage") is None

    await _delete(hass, kvs, garage)
    await _next_status_poll(hass)
    assert entry.runtime_data is running
    assert garage not in entry.options[CONF_STREAMS]
    assert _device(hass, garage) is None
    assert hass.states.get("camera.garage") is None
    assert hass.states.get("binary_sensor.garage_receiving_video") is None
    assert garage not in running.health
    # The others stay.
    assert hass.states.get("camera.front_door").state != "unavailable"

    # Created again (a new ARN in AWS): it comes back.
    again = await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    assert again in entry.options[CONF_STREAMS]
    assert hass.states.get("camera.garage") is not None


async def test_followed_account_lists_once_per_status_poll(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """ListStreams runs with the 5-minute poll only, not with the health polls."""
    entry = _following(config_entry)
    await setup_entry(hass, entry)
    await admin(hass, emulator, "DELETE", "calls")
    for _ in range(3):
        await _next_status_poll(hass)
    counts = await calls(hass, emulator)
    assert counts["ListStreams"] == 3
    assert counts["DescribeStream"] == 6  # two streams per poll, as without it


async def test_new_stream_raises_a_repair_that_adds_it(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """Option off: one fixable repair per new stream; fixing it adds the stream."""
    assert await async_setup_component(hass, "repairs", {})
    await setup_entry(hass, config_entry)
    # An entry from before the option: what the account has now is not new.
    assert CONF_KNOWN_UNTIL in config_entry.options
    running = config_entry.runtime_data

    garage = await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    issue = _issue(hass, config_entry, "garage")
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "new_stream"
    assert hass.states.get("camera.garage") is None
    assert garage not in config_entry.options[CONF_STREAMS]
    await _next_status_poll(hass)  # raised once, not again per poll
    assert len([i for i in ir.async_get(hass).issues if i[0] == DOMAIN]) == 1

    result = await _fix(hass, issue.issue_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.runtime_data is running  # no reload
    assert garage in config_entry.options[CONF_STREAMS]
    assert config_entry.options[CONF_FOLLOW_ALL] is False
    assert hass.states.get("camera.garage") is not None
    assert hass.states.get("binary_sensor.garage_receiving_video") is not None
    assert _issue(hass, config_entry, "garage") is None
    await _next_status_poll(hass)
    assert _issue(hass, config_entry, "garage") is None


async def test_repair_can_turn_on_following(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """Fixing one repair with "also later ones" adds every new stream."""
    assert await async_setup_component(hass, "repairs", {})
    await setup_entry(hass, config_entry)
    garage = await _create(hass, kvs, "garage")
    porch = await _create(hass, kvs, "porch")
    await _next_status_poll(hass)
    issue = _issue(hass, config_entry, "garage")
    assert _issue(hass, config_entry, "porch") is not None

    await _fix(hass, issue.issue_id, {CONF_FOLLOW_ALL: True})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.options[CONF_FOLLOW_ALL] is True
    assert {garage, porch} <= set(config_entry.options[CONF_STREAMS])
    assert hass.states.get("camera.porch") is not None
    assert _issue(hass, config_entry, "porch") is None


async def test_repair_of_a_removed_entry_or_unloaded_entry(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """An unloaded entry takes the stream at its next setup; a removed one aborts."""
    assert await async_setup_component(hass, "repairs", {})
    await setup_entry(hass, config_entry)
    garage = await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    issue_id = _issue(hass, config_entry, "garage").issue_id
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()

    result = await _fix(hass, issue_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert garage in config_entry.options[CONF_STREAMS]
    assert config_entry.state is ConfigEntryState.NOT_LOADED

    porch = await _create(hass, kvs, "porch")
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("camera.garage") is not None
    issue_id = _issue(hass, config_entry, "porch").issue_id
    # The issue outlives the entry only until async_remove_entry runs: fix it
    # in between, as a panel left open would.
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, config_entry, "porch") is None  # removed with the entry
    result = await manager.async_configure(flow["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_removed"
    assert porch  # created, never added


async def test_new_stream_repair_goes_when_the_stream_is_deleted(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """A stream deleted before anyone added it takes its repair along."""
    await setup_entry(hass, config_entry)
    garage = await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    assert _issue(hass, config_entry, "garage") is not None
    await _delete(hass, kvs, garage)
    await _next_status_poll(hass)
    assert _issue(hass, config_entry, "garage") is None


async def test_streams_left_out_at_setup_are_not_new(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """A stream left out is no repair; saving the options dismisses new ones."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=config_entry.data,
        options={**config_entry.options, CONF_STREAMS: [stream_arns["front-door"]]},
    )
    await setup_entry(hass, entry)
    await _next_status_poll(hass)
    assert _issue(hass, entry, "backyard") is None

    await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    assert _issue(hass, entry, "garage") is not None
    running = entry.runtime_data
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], result["data_schema"]({})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # Seen in the list and not chosen: dismissed, and not raised again.
    assert entry.runtime_data is running  # nothing the user sets changed
    assert _issue(hass, entry, "garage") is None
    await _next_status_poll(hass)
    assert _issue(hass, entry, "garage") is None
    assert hass.states.get("camera.garage") is None


async def test_options_turn_following_on(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """Following shows every stream of the account, chosen or not."""
    await setup_entry(hass, config_entry)
    garage = await _create(hass, kvs, "garage")
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["data_schema"]({})[CONF_FOLLOW_ALL] is False
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STREAMS: [stream_arns["front-door"]],
            CONF_FOLLOW_ALL: True,
            CONF_HLS_CONTAINER: "fragmented_mp4",
            CONF_URL_LIFETIME: 3600,
            CONF_TIMESTAMP_TYPE: "server_timestamp",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert config_entry.options[CONF_FOLLOW_ALL] is True
    assert set(config_entry.options[CONF_STREAMS]) == {*stream_arns.values(), garage}
    assert hass.states.get("camera.garage") is not None
    assert hass.states.get("camera.backyard") is not None


async def test_following_needs_a_key_that_may_list(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """The option is refused for a key without ListStreams; polls carry on."""
    await setup_entry(hass, config_entry)
    await emulator_key(hass, emulator, denied=["ListStreams"])
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**result["data_schema"]({}), CONF_FOLLOW_ALL: True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_FOLLOW_ALL: "follow_needs_listing"}
    # Saved without it, the baseline stays as it was.
    before = config_entry.options[CONF_KNOWN_UNTIL]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**result["data_schema"]({}), CONF_FOLLOW_ALL: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options[CONF_KNOWN_UNTIL] == before

    # The status poll: refused once, then not asked again until a reload.
    await admin(hass, emulator, "DELETE", "calls")
    await _next_status_poll(hass)
    await _next_status_poll(hass)
    counts = await calls(hass, emulator)
    assert counts.get("ListStreams", 0) == 1
    assert hass.states.get("camera.front_door").state != "unavailable"


async def test_failed_listing_keeps_the_poll_and_the_repairs(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
) -> None:
    """ListStreams failing (throttled) fails neither the status nor a raised repair."""
    await setup_entry(hass, config_entry)
    await _create(hass, kvs, "garage")
    await _next_status_poll(hass)
    assert _issue(hass, config_entry, "garage") is not None
    fault = {"operation": "ListStreams", "error": "ClientLimitExceededException"}
    await admin(hass, emulator, "POST", "faults", {**fault, "count": -1})
    await _next_status_poll(hass)
    assert config_entry.runtime_data.coordinator.last_update_success
    assert hass.states.get("camera.front_door").state != "unavailable"
    assert _issue(hass, config_entry, "garage") is not None
    await admin(hass, emulator, "DELETE", "faults")


async def test_new_entry_and_new_region_set_the_baseline(
    hass: HomeAssistant, emulator: EmulatorProcess, stream_arns: dict[str, str]
) -> None:
    """A new entry starts off, with the streams it was shown as known."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "user"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(emulator)
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STREAMS: [stream_arns["backyard"]]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    options = result["options"]
    assert options[CONF_FOLLOW_ALL] is False
    assert options[CONF_KNOWN_UNTIL] > known_until([])
    await hass.async_block_till_done()


def test_baseline_of_an_empty_listing() -> None:
    """No stream listed: every stream created later is new."""
    assert known_until([]) == "0001-01-01T00:00:00+00:00"


async def test_followed_stream_deleted_while_home_assistant_was_down(
    hass: HomeAssistant,
    emulator: EmulatorProcess,
    kvs: Any,
    config_entry: MockConfigEntry,
    stream_arns: dict[str, str],
) -> None:
    """Following the account, setup drops a stream deleted meanwhile."""
    entry = _following(config_entry)
    entry.add_to_hass(hass)
    # Its device from before the restart.
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, stream_arns["backyard"])}
    )
    await _delete(hass, kvs, stream_arns["backyard"])
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.options[CONF_STREAMS] == [stream_arns["front-door"]]
    assert _device(hass, stream_arns["backyard"]) is None
    assert hass.states.get("camera.backyard") is None
    assert hass.states.get("camera.front_door") is not None


async def test_options_of_a_key_that_never_could_list(
    hass: HomeAssistant, emulator: EmulatorProcess, config_entry: MockConfigEntry
) -> None:
    """Without any listing there is no baseline, and saving sets none."""
    await emulator_key(hass, emulator, denied=["ListStreams"])
    await setup_entry(hass, config_entry)
    assert CONF_KNOWN_UNTIL not in config_entry.options
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], result["data_schema"]({})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_KNOWN_UNTIL not in config_entry.options
