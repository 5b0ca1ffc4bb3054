"""Async client for Amazon Kinesis Video Streams (control plane and archived media).

Plain Python and boto3, no Home Assistant imports. Every boto3 call runs in an
executor; retries, back-off and the data-endpoint cache live here, on the loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, Self, TypedDict

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import parse_timestamp

if TYPE_CHECKING:
    from mypy_boto3_kinesis_video_archived_media import (
        KinesisVideoArchivedMediaClient as MediaClient,
    )
    from mypy_boto3_kinesis_video_archived_media.type_defs import (
        FragmentTypeDef,
        GetClipInputTypeDef,
        GetDASHStreamingSessionURLInputTypeDef,
        GetHLSStreamingSessionURLInputTypeDef,
        GetImagesInputTypeDef,
        GetImagesOutputTypeDef,
        HLSTimestampRangeTypeDef,
        ImageTypeDef,
        ListFragmentsInputTypeDef,
    )
    from mypy_boto3_kinesisvideo import KinesisVideoClient as ControlClient
    from mypy_boto3_kinesisvideo.literals import APINameType
    from mypy_boto3_kinesisvideo.type_defs import (
        ListStreamsInputTypeDef,
        ListStreamsOutputTypeDef,
        StreamInfoTypeDef,
    )

_LOGGER = logging.getLogger(__name__)

PlaybackMode = Literal["LIVE", "LIVE_REPLAY", "ON_DEMAND"]
TimestampType = Literal["SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"]
ContainerFormat = Literal["FRAGMENTED_MP4", "MPEG_TS"]
DiscontinuityMode = Literal["ALWAYS", "NEVER", "ON_DISCONTINUITY"]
DisplayTimestamp = Literal["ALWAYS", "NEVER"]
ImageFormat = Literal["JPEG", "PNG"]

LIST_FRAGMENTS_PAGE: Final = 1000  # ListFragments' MaxResults ceiling
LIST_STREAMS_PAGE: Final = 1000
# ListFragments allows 5 TPS per stream: pace a little under it (rate and burst),
# so network jitter never lets two calls reach the service too close together.
LIST_FRAGMENTS_TPS: Final = 4.5
LIST_FRAGMENTS_BURST: Final = 4
# GetClip allows 1 TPS per stream (no burst): starts 1.1 s apart, for the same
# reason. A clip's parts are downloaded one after another, so a part taking
# longer than this is not slowed down at all.
GET_CLIP_INTERVAL_S: Final = 1.1
MEDIA_FRAGMENTS_BATCH: Final = 1000  # GetMediaForFragmentList's ceiling
DOWNLOAD_CHUNK: Final = 1024 * 1024  # bytes read and written at a time
# GetImages bills per image: a 6 s window sampled every 3 s asks for at most three
# timestamps; the one at "now" is usually still being ingested (NO_MEDIA), so the
# newest complete frame costs about two images.
LATEST_IMAGE_WINDOW: Final = timedelta(seconds=6)
LATEST_IMAGE_INTERVAL_MS: Final = 3000
_MESSAGE_MAX: Final = 200
# The botocore model's ResourceARN pattern, anchored, with the parts captured.
_STREAM_ARN: Final = re.compile(
    r"arn:(?P<partition>[a-z\d-]+):kinesisvideo:(?P<region>[a-z0-9-]+)"
    r":(?P<account_id>[0-9]+):stream/(?P<name>[a-zA-Z0-9_.-]+)/(?P<created>[0-9]+)"
)

# The key itself is refused (unknown, wrong secret, expired): re-authenticate.
_AUTH_CODES: Final = frozenset(
    [
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    ]
)
# The request was signed too far from AWS's time (5 minutes for most services):
# the local clock is off, and new keys would not help. KVS answers with
# InvalidSignatureException "Signature expired: ..." / "Signature not yet current: ...".
_CLOCK_SKEW_CODES: Final = frozenset(
    ["RequestExpired", "RequestInTheFuture", "RequestTimeTooSkewed"]
)
_CLOCK_SKEW_MESSAGES: Final = ("Signature expired", "Signature not yet current")
# The key is fine but its IAM policy does not allow the action: new keys would
# not help (re-authenticating with the same key would loop), the policy would.
_PERMISSION_CODES: Final = frozenset(
    ["AccessDeniedException", "NotAuthorizedException"]
)
_THROTTLE_CODES: Final = frozenset(
    ["ClientLimitExceededException", "ThrottlingException", "TooManyRequestsException"]
)
# Permanent: the request (or the stream's media) cannot be served as asked.
_INVALID_CODES: Final = frozenset(
    [
        "InvalidArgumentException",
        "UnsupportedStreamMediaTypeException",
        "InvalidCodecPrivateDataException",
        "MissingCodecPrivateDataException",
        "InvalidMediaFrameException",
        "SerializationException",
    ]
)


class KinesisVideoError(Exception):
    """Base error. ``code`` is a short stable key; ``aws_code`` the AWS error code."""

    code: str = "unknown"

    def __init__(
        self,
        message: str,
        *,
        aws_code: str | None = None,
        retryable: bool = False,
        endpoint_moved: bool = False,
    ) -> None:
        super().__init__(message)
        self.aws_code = aws_code
        self.retryable = retryable
        self.endpoint_moved = endpoint_moved


class AuthenticationError(KinesisVideoError):
    """The credentials are refused: unknown key, wrong secret or expired."""

    code = "authentication"


class ClockSkewError(KinesisVideoError):
    """AWS refused the request's signing time: this machine's clock is off."""

    code = "clock_skew"


class PermissionDeniedError(KinesisVideoError):
    """Valid credentials whose IAM policy does not allow this action."""

    code = "permission_denied"


class ThrottledError(KinesisVideoError):
    """The per-stream or account request rate was exceeded (after retries)."""

    code = "throttled"


class NoMediaError(KinesisVideoError):
    """No fragments in the requested range (or none recent enough for LIVE)."""

    code = "no_media"


class StreamNotFoundError(KinesisVideoError):
    """The stream does not exist (any more)."""

    code = "stream_not_found"


class NoDataRetentionError(KinesisVideoError):
    """The stream keeps no media, so there is no archive to read."""

    code = "no_data_retention"


class InvalidArgumentError(KinesisVideoError):
    """The request is invalid, or the stream's media cannot be served that way."""

    code = "invalid_argument"


class ServiceError(KinesisVideoError):
    """5xx, connection failure, timeout or an unexpected answer (after retries)."""

    code = "service"


class RunInExecutor(Protocol):
    """Runs a blocking callable off the loop (e.g. ``hass.async_add_executor_job``)."""

    def __call__[*Ts, T](self, func: Callable[[*Ts], T], /, *args: *Ts) -> Awaitable[T]:
        """Return an awaitable of ``func(*args)`` run in an executor."""
        ...


def _run_in_default_executor[*Ts, T](
    func: Callable[[*Ts], T], /, *args: *Ts
) -> Awaitable[T]:
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key pair and region; ``endpoint_url`` overrides AWS's endpoint."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded, jittered exponential back-off for throttling and transient errors."""

    retries: int = 4
    base_s: float = 0.5
    cap_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.cap_s, self.base_s * 2.0**attempt)
        # "Equal jitter": spreads clients apart but never retries at once.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class StreamArn:
    """The parts of a stream ARN."""

    partition: str
    region: str
    account_id: str
    name: str


def parse_stream_arn(arn: str) -> StreamArn:
    """Split a stream ARN; ValueError if it is not one."""
    if (match := _STREAM_ARN.fullmatch(arn.strip())) is None:
        raise ValueError("Not a Kinesis video stream ARN")
    return StreamArn(
        match["partition"], match["region"], match["account_id"], match["name"]
    )


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream as DescribeStream/ListStreams describe it."""

    name: str
    arn: str
    status: str
    media_type: str | None
    retention_hours: int
    created: datetime | None
    device_name: str | None
    version: str | None

    @property
    def region(self) -> str:
        """Region, from the ARN."""
        return parse_stream_arn(self.arn).region

    @property
    def account_id(self) -> str:
        """AWS account id, from the ARN."""
        return parse_stream_arn(self.arn).account_id


@dataclass(frozen=True, slots=True)
class SessionUrl:
    """An HLS/DASH session URL (a bearer token: kept out of repr and logs)."""

    url: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Fragment:
    """One archived fragment; ``number`` is a decimal string beyond int64."""

    number: str
    producer_timestamp: datetime
    server_timestamp: datetime
    duration_ms: int
    size: int


@dataclass(frozen=True, slots=True)
class Image:
    """One GetImages result: content, or an error such as NO_MEDIA."""

    timestamp: datetime
    content: bytes | None
    error: str | None


def _parse_timestamp(value: Any) -> datetime:
    """A response timestamp; epoch seconds (KVS's JSON) straight to UTC.

    botocore's default looks the local zone up (dateutil) for every value, which
    dominates parsing a day of fragments.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    result: datetime = parse_timestamp(value)
    return result


def _utc(value: datetime) -> datetime:
    """Normalise to UTC (botocore parses epoch timestamps in local time)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidArgumentError("Timestamps must be timezone-aware.")
    return value


def _time_range(
    start: datetime | None, end: datetime | None
) -> HLSTimestampRangeTypeDef | None:
    time_range: HLSTimestampRangeTypeDef = {}
    if start is not None:
        time_range["StartTimestamp"] = _aware(start)
    if end is not None:
        time_range["EndTimestamp"] = _aware(end)
    return time_range or None


def _stream_info(info: StreamInfoTypeDef) -> StreamInfo:
    created = info.get("CreationTime")
    return StreamInfo(
        name=info["StreamName"],
        arn=info["StreamARN"],
        status=info["Status"],
        media_type=info.get("MediaType"),
        retention_hours=info.get("DataRetentionInHours", 0),
        created=None if created is None else _utc(created),
        device_name=info.get("DeviceName"),
        version=info.get("Version"),
    )


def _decode_images(raw: list[ImageTypeDef]) -> list[Image]:
    images = [
        Image(
            timestamp=_utc(item["TimeStamp"]),
            content=base64.b64decode(item["ImageContent"])
            if "ImageContent" in item
            else None,
            error=item.get("Error"),
        )
        for item in raw
    ]
    return sorted(images, key=lambda image: image.timestamp)


class _Page(TypedDict):
    """A ListFragments page, its fragments built."""

    ResponseMetadata: Any
    NextToken: str | None
    Fragments: list[Fragment]


def _fragments(items: list[FragmentTypeDef]) -> list[Fragment]:
    return [
        Fragment(
            number=item["FragmentNumber"],
            producer_timestamp=_utc(item["ProducerTimestamp"]),
            server_timestamp=_utc(item["ServerTimestamp"]),
            duration_ms=item.get("FragmentLengthInMilliseconds", 0),
            size=item.get("FragmentSizeInBytes", 0),
        )
        for item in items
    ]


def _sorted_fragments(
    pages: list[list[Fragment]], producer: bool, limit: int | None
) -> tuple[list[Fragment], bool]:
    """Oldest first, each number once; True if cut to ``limit`` (executor)."""
    # Keyed by number: an eventually consistent listing may repeat one.
    found = {fragment.number: fragment for page in pages for fragment in page}
    fragments = sorted(
        found.values(),
        key=lambda f: (
            f.producer_timestamp if producer else f.server_timestamp,
            int(f.number),
        ),
    )
    if limit is not None and len(fragments) > limit:
        return fragments[:limit], True
    return fragments, False


async def _all_pages[R: Mapping[str, Any]](
    fetch: Callable[[str | None], Awaitable[R]],
) -> list[R]:
    """Every page of a NextToken-paginated call, fetched one after another."""
    pages = [await fetch(None)]
    while token := pages[-1].get("NextToken"):
        pages.append(await fetch(token))
    return pages


def _payload_to_file(
    response: Mapping[str, Any], path: Path, offset: int, abort: threading.Event
) -> dict[str, Any]:
    """Stream a response's ``Payload`` into ``path`` from ``offset`` (executor).

    The file is cut back to ``offset`` first, so a retried attempt never leaves
    bytes of the failed one. An answer flagged as an error (wrong endpoint, HTTP
    200) is not written. When ``abort`` is set (the caller was cancelled while
    this thread ran on), the file is deleted: nothing half-written is left.
    Returns the response metadata and ``BytesWritten``.
    """
    payload = response["Payload"]
    metadata = response.get("ResponseMetadata", {})
    result: dict[str, Any] = {"ResponseMetadata": metadata, "BytesWritten": 0}
    try:
        if "x-amzn-errortype" in metadata.get("HTTPHeaders", {}) or abort.is_set():
            return result
        with path.open("r+b" if offset else "wb") as file:
            file.seek(offset)
            file.truncate()
            for chunk in payload.iter_chunks(DOWNLOAD_CHUNK):
                if abort.is_set():
                    break
                file.write(chunk)
                result["BytesWritten"] += len(chunk)
        if abort.is_set():
            # A part reached through /proc/self/fd cannot be unlinked by that
            # path; its folder deletes it by name.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    finally:
        payload.close()
    return result


def _translate(
    err: BotoCoreError | ClientError,
    operation: str,
    not_found: type[KinesisVideoError],
) -> KinesisVideoError:
    """Map a botocore error onto our types, without secrets or URLs in the text."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = error.get("Code", "")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        detail = str(error.get("Message", ""))[:_MESSAGE_MAX]
        message = f"{operation}: {code or status}: {detail}"
        if code in _PERMISSION_CODES:
            return PermissionDeniedError(message, aws_code=code)
        if code in _CLOCK_SKEW_CODES or (
            code in _AUTH_CODES and detail.startswith(_CLOCK_SKEW_MESSAGES)
        ):
            return ClockSkewError(message, aws_code=code)
        if code in _AUTH_CODES or status in (401, 403):
            return AuthenticationError(message, aws_code=code)
        if code in _THROTTLE_CODES or status == 429:
            return ThrottledError(message, aws_code=code, retryable=True)
        if code == "ResourceNotFoundException":
            return not_found(message, aws_code=code)
        if code == "UnknownOperationException":  # wrong endpoint, as a real error
            return ServiceError(message, aws_code=code, endpoint_moved=True)
        if code == "NoDataRetentionException":
            return NoDataRetentionError(message, aws_code=code)
        if code in _INVALID_CODES:
            return InvalidArgumentError(message, aws_code=code)
        return ServiceError(message, aws_code=code, retryable=status >= 500)
    if isinstance(err, ParamValidationError):
        return InvalidArgumentError(f"{operation}: {str(err)[:_MESSAGE_MAX]}")
    if isinstance(err, BotoConnectionError | HTTPClientError):
        # Timeouts included. The endpoint may have moved: drop it and retry.
        return ServiceError(
            f"{operation}: connection failed ({type(err).__name__})",
            retryable=True,
            endpoint_moved=True,
        )
    return ServiceError(f"{operation}: {type(err).__name__}")


class _TokenBucket:
    """Paces the starts of calls so a per-stream TPS limit is never hit.

    At most ``burst`` calls start at once, then ``rate`` a second, counted start
    to start (however long each call then takes). A caller books its start on
    arrival, before waiting, so concurrent callers start in turn. The clock is
    the loop's unless one is given (tests).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None
        self._clock = clock
        self._sleep = sleep

    async def take(self) -> None:
        """Book the next start and wait for it."""
        now = self._clock() if self._clock else asyncio.get_running_loop().time()
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._last = now
        # Below zero, the debt is the queue of booked starts. A cancelled
        # caller's slot is not given back: later bookings already count on it.
        self._tokens -= 1
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)


# Operation -> (starts a second, burst) per stream, shared by all callers.
_PACING: Final[dict[str, tuple[float, float]]] = {
    "ListFragments": (LIST_FRAGMENTS_TPS, LIST_FRAGMENTS_BURST),
    "GetClip": (1 / GET_CLIP_INTERVAL_S, 1),
}


class KinesisVideoClient:
    """One per config entry: boto3 clients, endpoint cache, retries."""

    def __init__(
        self,
        credentials: AwsCredentials,
        *,
        session: boto3.Session,
        control: ControlClient,
        config: Config,
        run_in_executor: RunInExecutor,
        retry: RetryPolicy,
    ) -> None:
        """Use ``await KinesisVideoClient.create(...)`` instead."""
        self._credentials = credentials
        self._session = session
        self._control_client = control
        self._config = config
        self._run = run_in_executor
        self._retry = retry
        self._endpoints: dict[tuple[str, str], str] = {}
        self._media_clients: dict[str, MediaClient] = {}
        # boto3 sessions are not thread-safe: create clients one at a time.
        self._client_lock = asyncio.Lock()
        # (operation, stream ARN) -> the pacing of those calls, shared by every
        # caller of this client (actions, browser, health polls).
        self._buckets: dict[tuple[str, str], _TokenBucket] = {}

    @classmethod
    async def create(
        cls,
        credentials: AwsCredentials,
        *,
        run_in_executor: RunInExecutor | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 30,
    ) -> Self:
        """Build the session and control-plane client in the executor."""
        run = run_in_executor or _run_in_default_executor
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # We retry ourselves (botocore skips ClientLimitExceededException).
            retries={"total_max_attempts": 1},
        )

        def build() -> tuple[boto3.Session, ControlClient]:
            # Creating clients loads JSON service models: blocking I/O.
            core = botocore.session.get_session()
            core.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=_parse_timestamp
            )
            session = boto3.Session(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                region_name=credentials.region,
                botocore_session=core,
            )
            control = session.client(
                "kinesisvideo", endpoint_url=credentials.endpoint_url, config=config
            )
            return session, control

        try:
            session, control = await run(build)
        except (BotoCoreError, ValueError) as err:
            # e.g. a region or endpoint URL botocore cannot use.
            raise InvalidArgumentError(
                f"Cannot set up a client: {type(err).__name__}",
                aws_code=type(err).__name__,
            ) from err
        return cls(
            credentials,
            session=session,
            control=control,
            config=config,
            run_in_executor=run,
            retry=retry or RetryPolicy(),
        )

    def __repr__(self) -> str:
        """Identify the client without credentials."""
        return (
            f"KinesisVideoClient(region={self._credentials.region!r},"
            f" access_key_id={self._credentials.access_key_id!r})"
        )

    # -- plumbing -------------------------------------------------------------

    async def _retrying[T](
        self, operation: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``attempt``; back off (on the loop) and retry transient failures."""
        tries = 0
        while True:
            try:
                return await attempt()
            except KinesisVideoError as err:
                if not err.retryable or tries >= self._retry.retries:
                    raise
                delay = self._retry.delay(tries)
                tries += 1
                _LOGGER.debug(
                    "%s failed (%s); retry %d in %.2f s", operation, err, tries, delay
                )
                await asyncio.sleep(delay)

    async def _call[R: Mapping[str, Any]](
        self,
        operation: str,
        func: Callable[[], R],
        not_found: type[KinesisVideoError],
        required: str | None = None,
    ) -> R:
        """One call in the executor, its errors translated and its answer checked."""
        try:
            response = await self._run(func)
        except (BotoCoreError, ClientError) as err:
            raise _translate(err, operation, not_found) from err
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        # A wrong endpoint answers HTTP 200 with an error type header.
        if "x-amzn-errortype" in headers or (required and not response.get(required)):
            error_type = str(headers.get("x-amzn-errortype", "")).split(":")[0]
            what = error_type or f"without {required}"
            raise ServiceError(
                f"{operation}: unexpected answer ({what})",
                aws_code=error_type or None,
                endpoint_moved=True,
            )
        return response

    async def _endpoint(self, arn: str, api: APINameType) -> str:
        """The data endpoint for (stream, API), cached until a call on it fails."""
        if (endpoint := self._endpoints.get((arn, api))) is not None:
            return endpoint
        response = await self._call(
            "GetDataEndpoint",
            lambda: self._control_client.get_data_endpoint(StreamARN=arn, APIName=api),
            StreamNotFoundError,
            "DataEndpoint",
        )
        endpoint = response["DataEndpoint"]
        _LOGGER.debug("Data endpoint for %s %s: %s", arn, api, endpoint)
        self._endpoints[(arn, api)] = endpoint
        return endpoint

    async def _media_client(self, endpoint: str) -> MediaClient:
        """The archived-media client for an endpoint, created once."""
        if (client := self._media_clients.get(endpoint)) is not None:
            return client
        async with self._client_lock:
            if (client := self._media_clients.get(endpoint)) is None:
                client = await self._run(
                    lambda: self._session.client(
                        "kinesis-video-archived-media",
                        endpoint_url=endpoint,
                        config=self._config,
                    )
                )
                self._media_clients[endpoint] = client
        return client

    async def _data[R: Mapping[str, Any]](
        self,
        arn: str,
        api: APINameType,
        operation: str,
        func: Callable[[MediaClient], R],
        *,
        not_found: type[KinesisVideoError],
        required: str | None = None,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> R:
        """A data-plane call; one immediate retry on a fresh endpoint if it moved.

        ``before`` runs right before every attempt (e.g. to pace the calls).
        """

        async def once() -> R:
            client = await self._media_client(await self._endpoint(arn, api))
            # Paced last, so finding the endpoint does not eat into the spacing.
            if before is not None:
                await before()
            try:
                return await self._call(
                    operation, lambda: func(client), not_found, required
                )
            except KinesisVideoError as err:
                # Not found may mean the stream is gone: let GetDataEndpoint say so.
                if err.endpoint_moved or err.aws_code == "ResourceNotFoundException":
                    self._endpoints.pop((arn, api), None)
                raise

        async def attempt() -> R:
            try:
                return await once()
            except KinesisVideoError as err:
                if not err.endpoint_moved:
                    raise
                _LOGGER.debug("%s: endpoint for %s failed (%s)", operation, arn, err)
            return await once()

        return await self._retrying(operation, attempt)

    async def _control[R: Mapping[str, Any]](
        self, operation: str, func: Callable[[], R], required: str | None = None
    ) -> R:
        """A control-plane call with retries."""
        return await self._retrying(
            operation,
            lambda: self._call(operation, func, StreamNotFoundError, required),
        )

    # -- control plane --------------------------------------------------------

    async def list_streams(self) -> list[StreamInfo]:
        """All streams of the account in this region (every page)."""

        async def page(token: str | None) -> ListStreamsOutputTypeDef:
            params: ListStreamsInputTypeDef = {"MaxResults": LIST_STREAMS_PAGE}
            if token:
                params["NextToken"] = token
            return await self._control(
                "ListStreams", lambda: self._control_client.list_streams(**params)
            )

        return [
            _stream_info(info)
            for response in await _all_pages(page)
            for info in response.get("StreamInfoList", [])
        ]

    async def describe_stream(self, arn: str) -> StreamInfo:
        """One stream; StreamNotFoundError if it is gone."""
        response = await self._control(
            "DescribeStream",
            lambda: self._control_client.describe_stream(StreamARN=arn),
            "StreamInfo",
        )
        return _stream_info(response["StreamInfo"])

    # -- archived media -------------------------------------------------------

    async def get_hls_url(
        self,
        arn: str,
        *,
        mode: PlaybackMode = "LIVE",
        expires: int = 300,
        container: ContainerFormat = "FRAGMENTED_MP4",
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
        start: datetime | None = None,
        end: datetime | None = None,
        max_results: int | None = None,
        discontinuity: DiscontinuityMode | None = None,
        display_timestamp: DisplayTimestamp | None = None,
    ) -> SessionUrl:
        """An HLS session URL (master playlist) valid for ``expires`` seconds."""
        params: GetHLSStreamingSessionURLInputTypeDef = {
            "StreamARN": arn,
            "PlaybackMode": mode,
            "HLSFragmentSelector": {"FragmentSelectorType": timestamp_type},
            "ContainerFormat": container,
            "Expires": expires,
        }
        if time_range := _time_range(start, end):
            params["HLSFragmentSelector"]["TimestampRange"] = time_range
        if max_results is not None:
            params["MaxMediaPlaylistFragmentResults"] = max_results
        if discontinuity is not None:
            params["DiscontinuityMode"] = discontinuity
        if display_timestamp is not None:
            params["DisplayFragmentTimestamp"] = display_timestamp
        # Computed before the call, so never later than the service's own expiry.
        expires_at = datetime.now(UTC) + timedelta(seconds=expires)
        response = await self._data(
            arn,
            "GET_HLS_STREAMING_SESSION_URL",
            "GetHLSStreamingSessionURL",
            lambda client: client.get_hls_streaming_session_url(**params),
            not_found=NoMediaError,
            required="HLSStreamingSessionURL",
        )
        return SessionUrl(response["HLSStreamingSessionURL"], expires_at)

    async def get_dash_url(
        self,
        arn: str,
        *,
        mode: PlaybackMode = "LIVE",
        expires: int = 300,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
        start: datetime | None = None,
        end: datetime | None = None,
        max_results: int | None = None,
        display_timestamp: DisplayTimestamp | None = None,
    ) -> SessionUrl:
        """A DASH session URL (manifest) valid for ``expires`` seconds."""
        params: GetDASHStreamingSessionURLInputTypeDef = {
            "StreamARN": arn,
            "PlaybackMode": mode,
            "DASHFragmentSelector": {"FragmentSelectorType": timestamp_type},
            "Expires": expires,
        }
        if time_range := _time_range(start, end):
            params["DASHFragmentSelector"]["TimestampRange"] = time_range
        if max_results is not None:
            params["MaxManifestFragmentResults"] = max_results
        if display_timestamp is not None:
            params["DisplayFragmentTimestamp"] = display_timestamp
        expires_at = datetime.now(UTC) + timedelta(seconds=expires)
        response = await self._data(
            arn,
            "GET_DASH_STREAMING_SESSION_URL",
            "GetDASHStreamingSessionURL",
            lambda client: client.get_dash_streaming_session_url(**params),
            not_found=NoMediaError,
            required="DASHStreamingSessionURL",
        )
        return SessionUrl(response["DASHStreamingSessionURL"], expires_at)

    async def list_fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
        limit: int | None = None,
    ) -> tuple[list[Fragment], bool]:
        """Fragments starting in [start, end], oldest first; True if cut by ``limit``.

        KVS returns fragments in no order, even across pages, so every page is read
        before sorting; ``limit`` keeps the earliest ones.
        """
        start, end = _aware(start), _aware(end)

        def fetch(client: MediaClient, params: ListFragmentsInputTypeDef) -> _Page:
            response = client.list_fragments(**params)
            # A page holds up to 1000 fragments: built here, in the executor.
            return {
                "ResponseMetadata": response["ResponseMetadata"],
                "NextToken": response.get("NextToken"),
                "Fragments": _fragments(response.get("Fragments", [])),
            }

        async def page(token: str | None) -> _Page:
            params: ListFragmentsInputTypeDef = {
                "StreamARN": arn,
                "MaxResults": LIST_FRAGMENTS_PAGE,
                "FragmentSelector": {
                    "FragmentSelectorType": timestamp_type,
                    "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
                },
            }
            if token:
                params["NextToken"] = token
            return await self._data(
                arn,
                "LIST_FRAGMENTS",
                "ListFragments",
                lambda client: fetch(client, params),
                not_found=StreamNotFoundError,
                before=self._pacer("ListFragments", arn),
            )

        pages = [response["Fragments"] for response in await _all_pages(page)]
        # Tens of thousands for a day: sorted in the executor too.
        return await self._run(
            _sorted_fragments, pages, timestamp_type == "PRODUCER_TIMESTAMP", limit
        )

    def _pacer(self, operation: str, arn: str) -> Callable[[], Awaitable[None]]:
        """Wait for a start of ``operation`` on the stream, within its TPS limit."""
        if (bucket := self._buckets.get((operation, arn))) is None:
            rate, burst = _PACING[operation]
            bucket = _TokenBucket(rate, burst)
            self._buckets[(operation, arn)] = bucket
        return bucket.take

    async def has_fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
    ) -> bool:
        """Whether any fragment starts in [start, end]: one call, one result."""
        params: ListFragmentsInputTypeDef = {
            "StreamARN": arn,
            "MaxResults": 1,
            "FragmentSelector": {
                "FragmentSelectorType": timestamp_type,
                "TimestampRange": {
                    "StartTimestamp": _aware(start),
                    "EndTimestamp": _aware(end),
                },
            },
        }
        response = await self._data(
            arn,
            "LIST_FRAGMENTS",
            "ListFragments",
            lambda client: client.list_fragments(**params),
            not_found=StreamNotFoundError,
            before=self._pacer("ListFragments", arn),
        )
        return bool(response.get("Fragments"))

    async def get_images(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        *,
        sampling_ms: int = 1000,
        image_format: ImageFormat = "JPEG",
        width: int | None = None,
        height: int | None = None,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
    ) -> list[Image]:
        """Stills every ``sampling_ms`` in [start, end] (at most 300 s), all pages."""
        start, end = _aware(start), _aware(end)

        async def page(token: str | None) -> GetImagesOutputTypeDef:
            params: GetImagesInputTypeDef = {
                "StreamARN": arn,
                "ImageSelectorType": timestamp_type,
                "StartTimestamp": start,
                "EndTimestamp": end,
                "SamplingInterval": sampling_ms,
                "Format": image_format,
            }
            if width is not None:
                params["WidthPixels"] = width
            if height is not None:
                params["HeightPixels"] = height
            if token:
                params["NextToken"] = token
            return await self._data(
                arn,
                "GET_IMAGES",
                "GetImages",
                lambda client: client.get_images(**params),
                not_found=StreamNotFoundError,
            )

        raw = [
            image
            for response in await _all_pages(page)
            for image in response.get("Images", [])
        ]
        # Base64 of up to 25 stills per page: decode off the loop.
        return await self._run(_decode_images, raw)

    async def latest_image(
        self,
        arn: str,
        *,
        width: int | None = None,
        height: int | None = None,
        image_format: ImageFormat = "JPEG",
    ) -> bytes | None:
        """The newest still of the last few seconds, or None if there is none."""
        end = datetime.now(UTC)
        images = await self.get_images(
            arn,
            end - LATEST_IMAGE_WINDOW,
            end,
            sampling_ms=LATEST_IMAGE_INTERVAL_MS,
            image_format=image_format,
            width=width,
            height=height,
        )
        return next(
            (i.content for i in reversed(images) if i.content is not None), None
        )

    # -- downloads to files ---------------------------------------------------

    async def _download(
        self,
        arn: str,
        api: APINameType,
        operation: str,
        download: Callable[[MediaClient, threading.Event], dict[str, Any]],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """A retried data-plane download run in one executor job.

        ``before`` paces every attempt. Cancelling the caller does not stop an
        executor thread: it is told to stop writing and to delete its file.
        """
        abort = threading.Event()
        try:
            response = await self._data(
                arn,
                api,
                operation,
                lambda client: download(client, abort),
                not_found=NoMediaError,
                before=before,
            )
        except asyncio.CancelledError:
            abort.set()
            raise
        return int(response["BytesWritten"])

    async def get_clip_to_file(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        path: Path,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
    ) -> int:
        """GetClip for [start, end] streamed into ``path``; the bytes written.

        The service returns at most the first 200 fragments / 100 MB of the
        range: split longer ranges. The download runs in one executor job, in
        chunks, so memory stays flat. Every attempt rewrites ``path`` from its
        start; calls are paced to GetClip's 1 TPS per stream.
        """
        start, end = _aware(start), _aware(end)
        params: GetClipInputTypeDef = {
            "StreamARN": arn,
            "ClipFragmentSelector": {
                "FragmentSelectorType": timestamp_type,
                "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
            },
        }

        def download(client: MediaClient, abort: threading.Event) -> dict[str, Any]:
            return _payload_to_file(client.get_clip(**params), path, 0, abort)

        return await self._download(
            arn, "GET_CLIP", "GetClip", download, self._pacer("GetClip", arn)
        )

    async def get_media_for_fragments_to_file(
        self, arn: str, numbers: list[str], path: Path
    ) -> int:
        """GetMediaForFragmentList into ``path`` (Matroska), 1000 numbers a call.

        The service sends each fragment as a Matroska segment of its own, so the
        batches simply follow each other in the file. A failed batch is retried
        from the offset where it began. Returns the bytes written.
        """
        if not numbers:
            raise InvalidArgumentError("No fragment numbers given.")
        total = 0
        for first in range(0, len(numbers), MEDIA_FRAGMENTS_BATCH):
            batch = numbers[first : first + MEDIA_FRAGMENTS_BATCH]

            def download(
                client: MediaClient,
                abort: threading.Event,
                batch: list[str] = batch,
                offset: int = total,
            ) -> dict[str, Any]:
                response = client.get_media_for_fragment_list(
                    StreamARN=arn, Fragments=batch
                )
                return _payload_to_file(response, path, offset, abort)

            total += await self._download(
                arn,
                "GET_MEDIA_FOR_FRAGMENT_LIST",
                "GetMediaForFragmentList",
                download,
            )
        return total

    async def close(self) -> None:
        """Close the connection pools of every botocore client."""
        clients: list[ControlClient | MediaClient] = [
            self._control_client,
            *self._media_clients.values(),
        ]
        self._media_clients.clear()
        self._endpoints.clear()

        def close_all() -> None:
            for client in clients:
                client.close()

        await self._run(close_all)
