"""The Amazon Kinesis Video Streams integration."""

from __future__ import annotations

import asyncio
from functools import partial

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from . import services
from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_ENDPOINT_URL,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STREAMS,
    DOMAIN,
)
from .coordinator import (
    KinesisVideoConfigEntry,
    KinesisVideoCoordinator,
    KinesisVideoData,
    StreamHealthCoordinator,
    remove_new_stream_issues,
    retention_issue_id,
)
from .kvs import AwsCredentials, KinesisVideoClient, KinesisVideoError, parse_stream_arn
from .media_source import async_get_archive
from .options import EntryOptions
from .thumbnails import IconView, ThumbnailView

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.CAMERA, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the archive actions and thumbnail views (once, whatever the entries)."""
    services.async_setup_services(hass)
    hass.http.register_view(ThumbnailView(partial(async_get_archive, hass)))
    hass.http.register_view(IconView())
    return True


async def async_setup_entry(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry
) -> bool:
    """Connect, check the streams, then add their devices and cameras."""
    credentials = AwsCredentials(
        access_key_id=entry.data[CONF_ACCESS_KEY_ID],
        secret_access_key=entry.data[CONF_SECRET_ACCESS_KEY],
        region=entry.data[CONF_REGION],
        endpoint_url=entry.data.get(CONF_ENDPOINT_URL) or None,
    )
    try:
        client = KinesisVideoClient(
            async_get_clientsession(hass),
            credentials,
            run_in_executor=hass.async_add_executor_job,
        )
    except KinesisVideoError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="cannot_connect"
        ) from err
    coordinator = KinesisVideoCoordinator(hass, entry, client)
    try:
        await coordinator.async_config_entry_first_refresh()
    except Exception:
        await client.close()
        raise
    health = {
        arn: StreamHealthCoordinator(hass, entry, client, coordinator, arn)
        for arn in coordinator.stream_arns
    }
    entry.runtime_data = KinesisVideoData(
        client=client,
        coordinator=coordinator,
        options=EntryOptions.from_entry(entry),
        health=health,
    )
    # One ListFragments per stream, all at once; a failure leaves the health
    # sensors unavailable until the next poll instead of failing the setup.
    await asyncio.gather(*(poll.async_refresh() for poll in health.values()))
    _remove_stale(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def _remove_stale(hass: HomeAssistant, entry: KinesisVideoConfigEntry) -> None:
    """Drop devices and repair issues of streams no longer configured."""
    arns = set(entry.options.get(CONF_STREAMS, []))
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not any(
            domain == DOMAIN and ident in arns for domain, ident in device.identifiers
        ):
            # One entry per account and region: the device is this entry's only.
            registry.async_remove_device(device.id)
    keep = {retention_issue_id(entry.entry_id, parse_stream_arn(a).name) for a in arns}
    _remove_retention_issues(hass, entry.entry_id, keep)


def _remove_retention_issues(
    hass: HomeAssistant, entry_id: str, keep: set[str]
) -> None:
    """Delete the entry's no-retention repair issues, except ``keep``."""
    prefix = retention_issue_id(entry_id, "")
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.startswith(prefix) and issue_id not in keep:
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def async_remove_entry(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry
) -> None:
    """A deleted entry leaves no repair issue behind."""
    _remove_retention_issues(hass, entry.entry_id, set())
    remove_new_stream_issues(hass, entry.entry_id)


async def async_unload_entry(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry
) -> bool:
    """Unload cameras and release the client's connections."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.client.close()
    return unloaded


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: KinesisVideoConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow deleting a device whose stream is not configured, or gone in AWS.

    A stream deleted in AWS is also dropped from the options, so it does not
    come back at the next reload.
    """
    arns = list(entry.options.get(CONF_STREAMS, []))
    mine = [i for d, i in device.identifiers if d == DOMAIN and i in arns]
    if not mine:
        return True
    data = getattr(entry, "runtime_data", None)
    if data is None or any(data.coordinator.data.get(arn) is not None for arn in mine):
        return False  # still in AWS (or unknown): untick it in the options instead
    options = {**entry.options, CONF_STREAMS: [a for a in arns if a not in mine]}
    hass.config_entries.async_update_entry(entry, options=options)
    hass.config_entries.async_schedule_reload(entry.entry_id)
    return True
