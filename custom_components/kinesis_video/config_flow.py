"""Config flow: AWS keys and region, then the streams to show (stored by ARN)."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_ENDPOINT_URL,
    CONF_HLS_CONTAINER,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STREAMS,
    CONF_TIMESTAMP_TYPE,
    CONF_URL_LIFETIME,
    CONTAINER_FMP4,
    CONTAINER_MPEG_TS,
    DEFAULT_HLS_CONTAINER,
    DEFAULT_TIMESTAMP_TYPE,
    DEFAULT_URL_LIFETIME,
    DOMAIN,
    MAX_URL_LIFETIME,
    MIN_URL_LIFETIME,
    TIMESTAMP_PRODUCER,
    TIMESTAMP_SERVER,
)
from .coordinator import (
    CONF_FOLLOW_ALL,
    CONF_KNOWN_UNTIL,
    KinesisVideoConfigEntry,
    known_until,
    remove_new_stream_issues,
)
from .kvs import (
    AwsCredentials,
    KinesisVideoClient,
    KinesisVideoError,
    PermissionDeniedError,
    StreamInfo,
    StreamNotFoundError,
    parse_stream_arn,
)
from .translated_errors import form_error

_LOGGER = logging.getLogger(__name__)

CONF_MANUAL_ARNS = "manual_arns"

# Regions where Kinesis Video Streams runs (botocore's endpoint data for
# kinesisvideo: the aws, aws-us-gov and aws-cn partitions); the selector also
# accepts a region typed in, for regions added after this list.
KVS_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-5",
    "ca-central-1",
    "eu-central-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-south-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
]
# Cloud instance metadata services are never an endpoint. Link-local addresses
# (EC2's and ECS's 169.254.169.254 and 169.254.170.2 among them) are refused as
# a whole; EC2's IPv6 address is not link-local.
_METADATA_ADDRESSES = frozenset(
    [
        ipaddress.ip_address("fd00:ec2::254"),  # EC2 over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ]
)
_METADATA_HOSTS = frozenset(
    [
        "instance-data",
        "instance-data.ec2.internal",
        "metadata",
        "metadata.google.internal",
    ]
)
# IPv6 prefix that carries an IPv4 address through NAT64 (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def form_schema(fields: dict[Any, Any]) -> Any:
    """A form schema.

    Typed Any on purpose: Home Assistant 2026 validates with probatio and aliases
    ``voluptuous`` to it at runtime, so the two legs' type stubs disagree.
    """
    return vol.Schema(fields)


def _credentials_schema(defaults: Mapping[str, Any]) -> Any:
    """Key, region and endpoint, filled in from ``defaults``; never the secret."""
    return form_schema(
        {
            vol.Required(
                CONF_ACCESS_KEY_ID,
                default=defaults.get(CONF_ACCESS_KEY_ID, vol.UNDEFINED),
            ): TextSelector(),
            vol.Required(CONF_SECRET_ACCESS_KEY): TextSelector(
                TextSelectorConfig(type=TextSelectorType.PASSWORD)
            ),
            vol.Required(
                CONF_REGION, default=defaults.get(CONF_REGION, "us-east-1")
            ): SelectSelector(
                SelectSelectorConfig(
                    options=KVS_REGIONS,
                    custom_value=True,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Optional(
                CONF_ENDPOINT_URL,
                description={"suggested_value": defaults.get(CONF_ENDPOINT_URL)},
            ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        }
    )


def _normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored: the fields without the spaces a paste brings along."""
    result = {
        **data,
        CONF_ACCESS_KEY_ID: data[CONF_ACCESS_KEY_ID].strip(),
        CONF_SECRET_ACCESS_KEY: data[CONF_SECRET_ACCESS_KEY].strip(),
        CONF_REGION: data[CONF_REGION].strip(),
    }
    if endpoint := (data.get(CONF_ENDPOINT_URL) or "").strip():
        scheme, sep, rest = endpoint.partition("://")
        result[CONF_ENDPOINT_URL] = f"{scheme.lower()}{sep}{rest}"
    else:
        result.pop(CONF_ENDPOINT_URL, None)
    return result


def _endpoint_error(url: str) -> str | None:
    """Why an endpoint URL is refused, as a form error; None if it is fine.

    Only the URL is looked at (no DNS lookup): a host name the user controls
    could point anywhere anyway.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # unbalanced IPv6 brackets, port not a port number
        return "invalid_endpoint"
    if (
        parts.scheme not in ("http", "https")  # urlsplit lowers the scheme
        or not parts.hostname
        or port == 0
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return "invalid_endpoint"
    host = parts.hostname.rstrip(".")  # lower case, without IPv6 brackets
    host = host.partition("%")[0]  # an IPv6 zone (fe80::1%eth0) changes nothing
    if host in _METADATA_HOSTS:
        return "endpoint_not_allowed"
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            # What the resolver also takes for IPv4: 2852039166, 0xa9fea9fe, ...
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None  # a host name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    elif isinstance(address, ipaddress.IPv6Address) and address in _NAT64:
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.is_link_local or address in _METADATA_ADDRESSES:
        return "endpoint_not_allowed"
    return None


def _credentials(data: Mapping[str, Any]) -> AwsCredentials:
    """The client's view of already ``_normalized`` form data."""
    return AwsCredentials(
        access_key_id=data[CONF_ACCESS_KEY_ID],
        secret_access_key=data[CONF_SECRET_ACCESS_KEY],
        region=data[CONF_REGION],
        endpoint_url=data.get(CONF_ENDPOINT_URL),
    )


class CredentialCheck:
    """The outcome of trying a key pair against the service."""

    def __init__(self) -> None:
        """No outcome yet."""
        self.errors: dict[str, str] = {}
        self.streams: list[StreamInfo] = []
        self.can_list = True


async def _check_credentials(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[CredentialCheck, KinesisVideoClient | None]:
    """Validate keys by listing streams; keys that may not list still pass.

    ``data`` is ``_normalized`` form data.
    """
    check = CredentialCheck()
    if (endpoint := data.get(CONF_ENDPOINT_URL)) and (
        error := _endpoint_error(endpoint)
    ):
        check.errors[CONF_ENDPOINT_URL] = error
        return check, None
    try:
        client = KinesisVideoClient(
            async_get_clientsession(hass),
            _credentials(data),
            run_in_executor=hass.async_add_executor_job,
        )
    except KinesisVideoError:
        check.errors["base"] = "cannot_connect"
        return check, None
    try:
        check.streams = await client.list_streams()
    except PermissionDeniedError:
        # Valid keys without kinesisvideo:ListStreams: streams by ARN only.
        check.can_list = False
    except KinesisVideoError as err:
        check.errors["base"] = form_error(err)
    except Exception:
        _LOGGER.exception("Unexpected error while checking AWS credentials")
        check.errors["base"] = "unknown"
    if check.errors:
        await client.close()
        return check, None
    return check, client


def _stream_options(streams: list[StreamInfo]) -> list[SelectOptionDict]:
    return [
        SelectOptionDict(
            value=s.arn,
            label=f"{s.name} ({s.media_type}, {s.retention_hours} h retention)",
        )
        for s in sorted(streams, key=lambda s: s.name)
    ]


def _split_arns(text: str | None) -> list[str]:
    return [a for a in re.split(r"[\s,]+", text or "") if a]


async def _resolve_streams(
    client: KinesisVideoClient,
    region: str,
    chosen: list[str],
    manual: str | None,
    errors: dict[str, str],
) -> list[str]:
    """Chosen ARNs plus typed-in ARNs, each typed one checked with DescribeStream."""
    arns = list(chosen)
    for arn in _split_arns(manual):
        try:
            parsed = parse_stream_arn(arn)
        except ValueError:
            errors[CONF_MANUAL_ARNS] = "invalid_arn"
            continue
        if parsed.region != region:
            errors[CONF_MANUAL_ARNS] = "wrong_region"
            continue
        try:
            info = await client.describe_stream(arn)
        except StreamNotFoundError:
            errors[CONF_MANUAL_ARNS] = "stream_not_found"
            continue
        except PermissionDeniedError:
            errors[CONF_MANUAL_ARNS] = "describe_denied"
            continue
        except KinesisVideoError as err:
            errors["base"] = form_error(err)
            continue
        if info.arn not in arns:
            arns.append(info.arn)
    if not arns and not errors:
        errors["base"] = "no_streams"
    accounts = {parse_stream_arn(a).account_id for a in arns}
    if len(accounts) > 1:
        errors["base"] = "mixed_accounts"
    return arns


class KinesisVideoConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an AWS account and region, then pick its streams."""

    VERSION = 1

    def __init__(self) -> None:
        """Start empty."""
        self._data: dict[str, Any] = {}
        self._client: KinesisVideoClient | None = None
        self._check: CredentialCheck | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: KinesisVideoConfigEntry) -> OptionsFlow:
        """Streams and playback options."""
        return KinesisVideoOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Keys, region and an optional endpoint."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _normalized(user_input)
            check, client = await _check_credentials(self.hass, data)
            errors = check.errors
            if client is not None:
                self._data = data
                self._client, self._check = client, check
                return await self.async_step_streams()
        return self.async_show_form(
            step_id="user",
            data_schema=_credentials_schema(user_input or {}),
            errors=errors,
        )

    async def async_step_streams(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick listed streams and/or type ARNs."""
        assert self._client is not None
        assert self._check is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            arns = await _resolve_streams(
                self._client,
                self._data[CONF_REGION],
                user_input.get(CONF_STREAMS, []),
                user_input.get(CONF_MANUAL_ARNS),
                errors,
            )
            if not errors and self.source == SOURCE_RECONFIGURE:
                if (moved := await self._finish_region_change(arns)) is not None:
                    return moved
                errors["base"] = "wrong_account"
            if not errors:
                account = parse_stream_arn(arns[0]).account_id
                region = self._data[CONF_REGION]
                await self._client.close()
                await self.async_set_unique_id(f"{account}_{region}")
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"AWS {account} ({region})",
                    data=self._data,
                    options={
                        CONF_STREAMS: arns,
                        CONF_HLS_CONTAINER: DEFAULT_HLS_CONTAINER,
                        CONF_URL_LIFETIME: DEFAULT_URL_LIFETIME,
                        CONF_TIMESTAMP_TYPE: DEFAULT_TIMESTAMP_TYPE,
                        CONF_FOLLOW_ALL: False,
                        **self._known_until(),
                    },
                )
        return self.async_show_form(
            step_id="streams",
            data_schema=_streams_schema(self._check.streams, user_input or {}),
            errors=errors,
            description_placeholders={
                "count": str(len(self._check.streams)),
                "listing": "" if self._check.can_list else "not allowed",
            },
        )

    async def _finish_region_change(self, arns: list[str]) -> ConfigFlowResult | None:
        """Move the entry to its new region's streams; None if another account."""
        assert self._client is not None
        entry = self._get_reconfigure_entry()
        account = parse_stream_arn(arns[0]).account_id
        region = self._data[CONF_REGION]
        if account != (entry.unique_id or "_").split("_", 1)[0]:
            return None
        await self._client.close()
        await self.async_set_unique_id(f"{account}_{region}")
        self._abort_if_unique_id_configured()  # another entry has that region
        return self.async_update_reload_and_abort(
            entry,
            unique_id=f"{account}_{region}",
            title=f"AWS {account} ({region})",
            data=self._data,
            # The old region's baseline means nothing here.
            options={
                **{k: v for k, v in entry.options.items() if k != CONF_KNOWN_UNTIL},
                CONF_STREAMS: arns,
                **self._known_until(),
            },
        )

    def _known_until(self) -> dict[str, str]:
        """The new-stream baseline of the listing the user chose from, if any."""
        assert self._check is not None
        if not self._check.can_list:
            return {}
        return {CONF_KNOWN_UNTIL: known_until(self._check.streams)}

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Keys stopped working."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """New keys for the same account."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _normalized({**entry.data, **user_input})
            errors = await self._check_same_account(entry, data)
            if endpoint_error := errors.pop(CONF_ENDPOINT_URL, None):
                # Stored before it was refused; this form has no such field.
                errors["base"] = endpoint_error
            if not errors:
                return self.async_update_reload_and_abort(entry, data=data)
        key_id = (user_input or entry.data)[CONF_ACCESS_KEY_ID]
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=form_schema(
                {
                    vol.Required(CONF_ACCESS_KEY_ID, default=key_id): TextSelector(),
                    vol.Required(CONF_SECRET_ACCESS_KEY): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    ),
                }
            ),
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change keys, region or endpoint of an existing entry.

        A new region has other streams: they are chosen next (same account).
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _normalized(user_input)
            if data[CONF_REGION] != entry.data[CONF_REGION]:
                check, client = await _check_credentials(self.hass, data)
                errors = check.errors
                if client is not None:
                    self._data, self._client, self._check = data, client, check
                    return await self.async_step_streams()
            else:
                errors = await self._check_same_account(entry, data)
                if not errors:
                    return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_credentials_schema(user_input or entry.data),
            errors=errors,
        )

    async def _check_same_account(
        self, entry: KinesisVideoConfigEntry, data: Mapping[str, Any]
    ) -> dict[str, str]:
        """Validate keys and make sure they reach the entry's account and region."""
        check, client = await _check_credentials(self.hass, data)
        if client is None:
            return check.errors
        try:
            arns = list(entry.options.get(CONF_STREAMS, []))
            if check.streams:
                account = parse_stream_arn(check.streams[0].arn).account_id
            elif arns:
                # Cannot list: the keys must at least see one configured stream.
                try:
                    info = await client.describe_stream(arns[0])
                except StreamNotFoundError:
                    return {"base": "stream_not_found"}
                except PermissionDeniedError:
                    return {"base": "describe_denied"}
                except KinesisVideoError as err:
                    return {"base": form_error(err)}
                account = parse_stream_arn(info.arn).account_id
            else:
                account = (entry.unique_id or "_").split("_", 1)[0]
        finally:
            await client.close()
        await self.async_set_unique_id(f"{account}_{data[CONF_REGION]}")
        reason = "wrong_account"
        if self.source == SOURCE_RECONFIGURE:
            reason = "wrong_account_or_region"
        self._abort_if_unique_id_mismatch(reason=reason)
        return {}


def _streams_schema(streams: list[StreamInfo], defaults: Mapping[str, Any]) -> Any:
    schema: dict[Any, Any] = {}
    if streams:
        schema[vol.Optional(CONF_STREAMS, default=defaults.get(CONF_STREAMS, []))] = (
            SelectSelector(
                SelectSelectorConfig(
                    options=_stream_options(streams),
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                )
            )
        )
    schema[
        vol.Optional(
            CONF_MANUAL_ARNS,
            description={"suggested_value": defaults.get(CONF_MANUAL_ARNS)},
        )
    ] = TextSelector(TextSelectorConfig(multiline=True))
    return form_schema(schema)


def _settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options the user sets (not the new-stream baseline), with defaults."""
    settings = {CONF_FOLLOW_ALL: False, **options}
    settings.pop(CONF_KNOWN_UNTIL, None)
    return settings


class KinesisVideoOptionsFlow(OptionsFlow):
    """Add or remove streams; playback options."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One form: streams and playback settings."""
        entry: KinesisVideoConfigEntry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            # The checks below need the entry's client (and working keys).
            return self.async_abort(reason="not_loaded")
        client = entry.runtime_data.client
        current = list(entry.options.get(CONF_STREAMS, []))
        errors: dict[str, str] = {}
        can_list = True
        try:
            listed = await client.list_streams()
        except KinesisVideoError:
            listed, can_list = [], False
        known = {s.arn for s in listed}
        # Streams typed in earlier (or gone since) stay choosable.
        extra = [
            SelectOptionDict(value=a, label=parse_stream_arn(a).name)
            for a in current
            if a not in known
        ]
        if user_input is not None:
            follow = bool(user_input.get(CONF_FOLLOW_ALL, False))
            chosen = list(user_input.get(CONF_STREAMS, []))
            if follow:
                # Following the account shows all its streams, chosen or not.
                chosen += [
                    s.arn
                    for s in listed
                    if s.arn not in chosen and s.status != "DELETING"
                ]
            arns = await _resolve_streams(
                client,
                entry.data[CONF_REGION],
                chosen,
                user_input.get(CONF_MANUAL_ARNS),
                errors,
            )
            if follow and not can_list:
                errors[CONF_FOLLOW_ALL] = "follow_needs_listing"
            if (
                arns
                and parse_stream_arn(arns[0]).account_id
                != (entry.unique_id or "_").split("_", 1)[0]
            ):
                errors["base"] = "wrong_account"
            if not errors:
                options = {
                    CONF_STREAMS: arns,
                    CONF_HLS_CONTAINER: user_input[CONF_HLS_CONTAINER].upper(),
                    CONF_URL_LIFETIME: int(user_input[CONF_URL_LIFETIME]),
                    CONF_TIMESTAMP_TYPE: user_input[CONF_TIMESTAMP_TYPE].upper(),
                    CONF_FOLLOW_ALL: follow,
                }
                if options != _settings(entry.options):
                    # Devices and entities follow at once. Scheduled here rather
                    # than from an update listener (deprecated with reauth and
                    # reconfigure from 2026.12; OptionsFlowWithReload is not in
                    # 2025.4). The reload task starts eagerly and its setup may
                    # read the options before any await: schedule it from the
                    # next loop turn, once the flow has stored the new options.
                    self.hass.loop.call_soon(
                        self.hass.config_entries.async_schedule_reload,
                        entry.entry_id,
                    )
                if can_list:
                    # The user has seen every stream listed: none is new now
                    # (the poll reads this; it needs no reload).
                    options[CONF_KNOWN_UNTIL] = known_until(listed)
                    remove_new_stream_issues(self.hass, entry.entry_id)
                elif CONF_KNOWN_UNTIL in entry.options:
                    options[CONF_KNOWN_UNTIL] = entry.options[CONF_KNOWN_UNTIL]
                return self.async_create_entry(data=options)
        defaults = user_input or entry.options
        schema = form_schema(
            {
                vol.Optional(
                    CONF_STREAMS, default=defaults.get(CONF_STREAMS, current)
                ): (
                    SelectSelector(
                        SelectSelectorConfig(
                            options=[*_stream_options(listed), *extra],
                            multiple=True,
                            mode=SelectSelectorMode.LIST,
                        )
                    )
                ),
                vol.Optional(CONF_MANUAL_ARNS): TextSelector(
                    TextSelectorConfig(multiline=True)
                ),
                vol.Optional(
                    CONF_FOLLOW_ALL, default=defaults.get(CONF_FOLLOW_ALL, False)
                ): BooleanSelector(),
                vol.Required(
                    CONF_HLS_CONTAINER,
                    default=defaults.get(
                        CONF_HLS_CONTAINER, DEFAULT_HLS_CONTAINER
                    ).lower(),
                ): SelectSelector(
                    SelectSelectorConfig(
                        # Translation keys must be lowercase (hassfest); the
                        # options keep AWS's spelling.
                        options=[CONTAINER_FMP4.lower(), CONTAINER_MPEG_TS.lower()],
                        translation_key=CONF_HLS_CONTAINER,
                    )
                ),
                vol.Required(
                    CONF_URL_LIFETIME,
                    default=defaults.get(CONF_URL_LIFETIME, DEFAULT_URL_LIFETIME),
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_URL_LIFETIME,
                        max=MAX_URL_LIFETIME,
                        step=60,
                        unit_of_measurement="s",
                        mode=NumberSelectorMode.BOX,
                    )
                ),
                vol.Required(
                    CONF_TIMESTAMP_TYPE,
                    default=defaults.get(
                        CONF_TIMESTAMP_TYPE, DEFAULT_TIMESTAMP_TYPE
                    ).lower(),
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=[TIMESTAMP_SERVER.lower(), TIMESTAMP_PRODUCER.lower()],
                        translation_key=CONF_TIMESTAMP_TYPE,
                    )
                ),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)
