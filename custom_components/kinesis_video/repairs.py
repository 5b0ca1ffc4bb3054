"""Repairs: add a stream created in the account since it was set up."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import BooleanSelector

from .config_flow import form_schema
from .const import CONF_STREAMS
from .coordinator import CONF_FOLLOW_ALL, KinesisVideoConfigEntry

# A step's result: RepairsFlowResult from 2026, FlowResult in 2025.4.
type _StepResult = Any


class AddStreamFlow(RepairsFlow):
    """Show the new stream in its entry, without a reload."""

    def __init__(self, entry_id: str, arn: str) -> None:
        """The entry and the stream its issue is about."""
        self._entry_id = entry_id
        self._arn = arn

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> _StepResult:
        """Ask first."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> _StepResult:
        """Add the stream (and, if asked, every later one) to the entry's options."""
        entry: KinesisVideoConfigEntry | None = (
            self.hass.config_entries.async_get_entry(self._entry_id)
        )
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is not None:
            streams = list(entry.options.get(CONF_STREAMS, []))
            if self._arn not in streams:
                streams.append(self._arn)
            follow = bool(user_input.get(CONF_FOLLOW_ALL, False))
            options = {
                **entry.options,
                CONF_STREAMS: streams,
                CONF_FOLLOW_ALL: follow or entry.options.get(CONF_FOLLOW_ALL, False),
            }
            self.hass.config_entries.async_update_entry(entry, options=options)
            if entry.state is ConfigEntryState.LOADED:
                # The status poll describes the stream and the platforms add
                # its entities (following the account, it adds the others).
                await entry.runtime_data.coordinator.async_refresh()
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(self.handler, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=form_schema(
                {vol.Optional(CONF_FOLLOW_ALL, default=False): BooleanSelector()}
            ),
            description_placeholders=(
                None if issue is None else issue.translation_placeholders
            ),
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The flow of a new-stream issue (the only fixable one)."""
    assert data is not None
    return AddStreamFlow(str(data["entry_id"]), str(data["arn"]))
