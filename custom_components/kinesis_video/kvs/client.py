"""Async Kinesis Video Streams client on an injected aiohttp session.

Control plane and archived media, spoken as rest-json and signed with botocore's
SigV4 signer: no boto3 client, no network call in an executor. Retries, back-off,
per-stream pacing and the data-endpoint cache live here, on the loop; only
blocking file writes (and decoding big answers) go to the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final, Protocol

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from . import wire
from .errors import (
    InvalidArgumentError,
    KinesisVideoError,
    NoMediaError,
    StreamNotFoundError,
    connection_error,
    error_from_answer,
    unexpected_answer,
)
from .models import (
    AwsCredentials,
    FragmentList,
    FragmentListBuilder,
    Image,
    ImageFormat,
    PlaybackRequest,
    SessionUrl,
    StillsRequest,
    StreamInfo,
    Timeouts,
    TimestampType,
)
from .pacing import Pacers, RetryPolicy

_LOGGER = logging.getLogger(__name__)

SIGNING_NAME: Final = "kinesisvideo"
LIST_FRAGMENTS_PAGE: Final = 1000  # ListFragments' MaxResults ceiling
LIST_STREAMS_PAGE: Final = 1000
MEDIA_FRAGMENTS_BATCH: Final = 1000  # GetMediaForFragmentList's ceiling
DOWNLOAD_CHUNK: Final = 1024 * 1024  # bytes written at a time
# Answers bigger than this (GetImages pages of base64 stills) are decoded off the loop.
DECODE_ON_LOOP_MAX: Final = 256 * 1024
# GetImages bills per image: a 6 s window sampled every 3 s asks for at most three
# timestamps; the one at "now" is usually still being ingested (NO_MEDIA), so the
# newest complete frame costs about two images.
LATEST_IMAGE_WINDOW: Final = timedelta(seconds=6)
LATEST_IMAGE_INTERVAL_MS: Final = 3000
# Data-plane operation -> the APIName that GetDataEndpoint is asked for.
DATA_APIS: Final = {
    "GetHLSStreamingSessionURL": "GET_HLS_STREAMING_SESSION_URL",
    "GetDASHStreamingSessionURL": "GET_DASH_STREAMING_SESSION_URL",
    "ListFragments": "LIST_FRAGMENTS",
    "GetImages": "GET_IMAGES",
    "GetClip": "GET_CLIP",
    "GetMediaForFragmentList": "GET_MEDIA_FOR_FRAGMENT_LIST",
}
# botocore's region check (validate_region_name).
_REGION: Final = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")


class RunInExecutor(Protocol):
    """Runs a blocking callable off the loop (e.g. ``hass.async_add_executor_job``)."""

    def __call__[*Ts, T](self, func: Callable[[*Ts], T], /, *args: *Ts) -> Awaitable[T]:
        """Return an awaitable of ``func(*args)`` run in an executor."""
        ...


def _run_in_default_executor[*Ts, T](
    func: Callable[[*Ts], T], /, *args: *Ts
) -> Awaitable[T]:
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


def control_endpoint(region: str) -> str:
    """AWS's control-plane endpoint of a region (China has its own DNS suffix)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://kinesisvideo.{region}.{suffix}"


def _checked_url(url: str) -> str:
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(
            "Cannot set up a client: not a URL", aws_code="ValueError"
        ) from err
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(
            "Cannot set up a client: the endpoint must be an http(s) URL",
            aws_code="ValueError",
        )
    return url.rstrip("/")


def _time_range(
    start: datetime | None, end: datetime | None
) -> dict[str, float] | None:
    time_range: dict[str, float] = {}
    if start is not None:
        time_range["StartTimestamp"] = wire.epoch_seconds(start)
    if end is not None:
        time_range["EndTimestamp"] = wire.epoch_seconds(end)
    return time_range or None


def _playback_params(
    arn: str, selector_key: str, request: PlaybackRequest
) -> dict[str, Any]:
    """What HLS and DASH session requests share: stream, mode, selector, expiry."""
    selector: dict[str, Any] = {"FragmentSelectorType": request.timestamp_type}
    if timestamps := _time_range(request.start, request.end):
        selector["TimestampRange"] = timestamps
    params: dict[str, Any] = {
        "StreamARN": arn,
        "PlaybackMode": request.mode,
        selector_key: selector,
        "Expires": wire.check_range("Expires", request.expires, 300, 43200),
    }
    if request.display_timestamp is not None:
        params["DisplayFragmentTimestamp"] = request.display_timestamp
    return params


class _FileSink:
    """A file written from ``offset`` by executor jobs, one at a time.

    The file is cut back to ``offset`` when opened, so a retried attempt never
    leaves bytes of the failed one. ``discard`` waits for a write still running
    in its thread, then deletes the file. A part reached through /proc/self/fd
    cannot be unlinked by that path (the error is ignored); its folder deletes
    it by name.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset
        self.written = 0
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._discarded = False

    def open(self) -> None:
        with self._lock:
            if self._discarded:
                return
            file = self.path.open("r+b" if self.offset else "wb")
            file.seek(self.offset)
            file.truncate()
            self._file = file

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file is not None and not self._discarded:
                self._file.write(data)
                self.written += len(data)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def discard(self) -> None:
        with self._lock:
            self._discarded = True
            if self._file is not None:
                self._file.close()
                self._file = None
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)


class KinesisVideoClient:
    """One per config entry: signer, endpoint cache, retries, pacing."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: AwsCredentials,
        *,
        retry: RetryPolicy | None = None,
        run_in_executor: RunInExecutor | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        """Send every request through ``session`` (not closed by this client)."""
        if not _REGION.fullmatch(credentials.region):
            raise InvalidArgumentError(
                "Cannot set up a client: invalid region", aws_code="InvalidRegionError"
            )
        self._credentials = credentials
        self._session = session
        self._control_url = _checked_url(
            credentials.endpoint_url or control_endpoint(credentials.region)
        )
        self._signer = SigV4Auth(
            Credentials(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token,
            ),
            SIGNING_NAME,
            credentials.region,
        )
        self._run = run_in_executor or _run_in_default_executor
        self._retry = retry or RetryPolicy()
        timeouts = timeouts or Timeouts()
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        self._endpoints: dict[tuple[str, str], str] = {}
        # (operation, stream ARN) -> the pacing of those calls, shared by every
        # caller of this client (actions, browser, health polls).
        self._pacers = Pacers()

    def __repr__(self) -> str:
        """Identify the client without credentials."""
        return (
            f"KinesisVideoClient(region={self._credentials.region!r},"
            f" access_key_id={self._credentials.access_key_id!r})"
        )

    # -- HTTP -----------------------------------------------------------------

    def _signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        self._signer.add_auth(request)
        return dict(request.headers.items())

    @contextlib.asynccontextmanager
    async def _post(
        self,
        operation: str,
        base_url: str,
        params: Mapping[str, Any],
        not_found: type[KinesisVideoError],
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A signed POST; yields the response once it is known to be an answer.

        Error answers (an HTTP 200 with an error type: a wrong endpoint) raise
        the mapped error. A connection failure, timeout or cut body, here or
        while the caller reads, raises a retryable ServiceError.
        """
        url = base_url + wire.PATHS[operation]
        body = wire.dumps(params)
        headers = self._signed_headers(url, body)
        try:
            async with self._session.post(
                URL(url, encoded=True),
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                if response.status != 200 or wire.ERROR_TYPE_HEADER in response.headers:
                    raw = await response.content.read(wire.ERROR_BODY_MAX)
                    code, message = wire.error_of(response.headers, raw)
                    raise error_from_answer(
                        code, response.status, message, operation, not_found
                    )
                yield response
        except (aiohttp.ClientError, TimeoutError) as err:
            raise connection_error(operation, err) from err

    async def _call[T](
        self,
        operation: str,
        base_url: str,
        params: Mapping[str, Any],
        not_found: type[KinesisVideoError],
        parse: Callable[[bytes], T],
    ) -> T:
        """One request; its answer parsed (off the loop if big)."""
        async with self._post(operation, base_url, params, not_found) as response:
            body = await response.read()
        try:
            if len(body) > DECODE_ON_LOOP_MAX:
                return await self._run(parse, body)
            return parse(body)
        except (ValueError, KeyError, TypeError) as err:
            raise unexpected_answer(operation, type(err).__name__) from err

    async def _json(
        self,
        operation: str,
        base_url: str,
        params: Mapping[str, Any],
        not_found: type[KinesisVideoError],
        required: str | None = None,
    ) -> dict[str, Any]:
        """A JSON answer; one without ``required`` is a wrong endpoint's."""
        data = await self._call(
            operation, base_url, params, not_found, wire.loads_object
        )
        if required and not data.get(required):
            raise unexpected_answer(operation, f"without {required}")
        return data

    # -- retries and endpoints --------------------------------------------------

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

    async def _control(
        self, operation: str, params: Mapping[str, Any], required: str | None = None
    ) -> dict[str, Any]:
        """A control-plane call with retries."""
        return await self._retrying(
            operation,
            lambda: self._json(
                operation, self._control_url, params, StreamNotFoundError, required
            ),
        )

    async def _endpoint(self, arn: str, api: str) -> str:
        """The data endpoint for (stream, API), cached until a call on it fails."""
        if (endpoint := self._endpoints.get((arn, api))) is not None:
            return endpoint
        response = await self._json(
            "GetDataEndpoint",
            self._control_url,
            {"StreamARN": arn, "APIName": api},
            StreamNotFoundError,
            "DataEndpoint",
        )
        try:
            endpoint = _checked_url(str(response["DataEndpoint"]))
        except InvalidArgumentError as err:
            raise unexpected_answer("GetDataEndpoint", "not a URL") from err
        _LOGGER.debug("Data endpoint for %s %s: %s", arn, api, endpoint)
        self._endpoints[(arn, api)] = endpoint
        return endpoint

    async def _data[T](
        self, arn: str, operation: str, call: Callable[[str], Awaitable[T]]
    ) -> T:
        """A data-plane call with retries; one at once on a fresh endpoint if moved.

        ``call`` gets the endpoint. Paced operations wait for their start on the
        stream's pacer before every attempt, after the endpoint is known (so
        finding it does not eat into the spacing).
        """
        api = DATA_APIS[operation]
        pacer = (
            self._pacers.bucket(operation, arn)
            if self._pacers.paces(operation)
            else None
        )

        async def once() -> T:
            endpoint = await self._endpoint(arn, api)
            if pacer is not None:
                await pacer.take()
            try:
                return await call(endpoint)
            except KinesisVideoError as err:
                # Not found may mean the stream is gone: let GetDataEndpoint say so.
                if err.endpoint_moved or err.aws_code == "ResourceNotFoundException":
                    self._endpoints.pop((arn, api), None)
                raise

        async def attempt() -> T:
            try:
                return await once()
            except KinesisVideoError as err:
                if not err.endpoint_moved:
                    raise
                _LOGGER.debug("%s: endpoint for %s failed (%s)", operation, arn, err)
            return await once()

        return await self._retrying(operation, attempt)

    async def _data_json(
        self,
        arn: str,
        operation: str,
        params: Mapping[str, Any],
        not_found: type[KinesisVideoError],
        required: str | None = None,
    ) -> dict[str, Any]:
        return await self._data(
            arn,
            operation,
            lambda endpoint: self._json(
                operation, endpoint, params, not_found, required
            ),
        )

    # -- control plane --------------------------------------------------------

    async def list_streams(self) -> list[StreamInfo]:
        """All streams of the account in this region (every page)."""
        streams: list[StreamInfo] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"MaxResults": LIST_STREAMS_PAGE}
            if token:
                params["NextToken"] = token
            response = await self._control("ListStreams", params)
            streams.extend(
                wire.stream_info(info) for info in response.get("StreamInfoList", [])
            )
            if not (token := response.get("NextToken")):
                return streams

    async def describe_stream(self, arn: str) -> StreamInfo:
        """One stream; StreamNotFoundError if it is gone."""
        response = await self._control(
            "DescribeStream", {"StreamARN": arn}, "StreamInfo"
        )
        return wire.stream_info(response["StreamInfo"])

    # -- sessions ---------------------------------------------------------------

    async def get_hls_url(
        self, arn: str, request: PlaybackRequest | None = None
    ) -> SessionUrl:
        """An HLS session URL (master playlist) valid for ``request.expires`` s.

        Without a request: a LIVE session of fragmented MP4 for five minutes.
        """
        request = request or PlaybackRequest()
        params = _playback_params(arn, "HLSFragmentSelector", request)
        params["ContainerFormat"] = request.container
        if request.max_results is not None:
            params["MaxMediaPlaylistFragmentResults"] = wire.check_range(
                "MaxMediaPlaylistFragmentResults", request.max_results, 1, 5000
            )
        if request.discontinuity is not None:
            params["DiscontinuityMode"] = request.discontinuity
        return await self._session_url(
            arn, "GetHLSStreamingSessionURL", params, "HLSStreamingSessionURL"
        )

    async def get_dash_url(
        self, arn: str, request: PlaybackRequest | None = None
    ) -> SessionUrl:
        """A DASH session URL (manifest) valid for ``request.expires`` seconds.

        DASH has neither HLS's MPEG-TS container nor its discontinuity mode:
        a request that sets them is refused (InvalidArgumentError).
        """
        request = request or PlaybackRequest()
        if request.container != "FRAGMENTED_MP4" or request.discontinuity is not None:
            raise InvalidArgumentError(
                "A DASH session has no container or discontinuity mode to choose"
            )
        params = _playback_params(arn, "DASHFragmentSelector", request)
        if request.max_results is not None:
            params["MaxManifestFragmentResults"] = wire.check_range(
                "MaxManifestFragmentResults", request.max_results, 1, 5000
            )
        return await self._session_url(
            arn, "GetDASHStreamingSessionURL", params, "DASHStreamingSessionURL"
        )

    async def _session_url(
        self, arn: str, operation: str, params: dict[str, Any], key: str
    ) -> SessionUrl:
        # Computed before the call, so never later than the service's own expiry.
        expires_at = datetime.now(UTC) + timedelta(seconds=params["Expires"])
        response = await self._data_json(arn, operation, params, NoMediaError, key)
        return SessionUrl(str(response[key]), expires_at)

    # -- archive ----------------------------------------------------------------

    def _fragments_query(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        timestamp_type: TimestampType,
        page_size: int,
    ) -> dict[str, Any]:
        return {
            "StreamARN": arn,
            "MaxResults": page_size,
            "FragmentSelector": {
                "FragmentSelectorType": timestamp_type,
                "TimestampRange": {
                    "StartTimestamp": wire.epoch_seconds(start),
                    "EndTimestamp": wire.epoch_seconds(end),
                },
            },
        }

    async def _fragment_page(
        self, arn: str, params: Mapping[str, Any]
    ) -> wire.FragmentPage:
        return await self._data(
            arn,
            "ListFragments",
            lambda endpoint: self._call(
                "ListFragments",
                endpoint,
                params,
                StreamNotFoundError,
                wire.fragment_page,
            ),
        )

    async def list_fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
        limit: int | None = None,
    ) -> tuple[FragmentList, bool]:
        """Fragments starting in [start, end], oldest first; True if cut by ``limit``.

        KVS returns fragments in no order, even across pages, so every page is read
        before sorting; ``limit`` keeps the earliest ones. Pages are parsed into
        columns as they come (see FragmentList): a day is a few objects, not
        tens of thousands.
        """
        query = self._fragments_query(
            arn, start, end, timestamp_type, LIST_FRAGMENTS_PAGE
        )
        builder = FragmentListBuilder(sort_by=timestamp_type)
        token: str | None = None
        while True:
            params = {**query, "NextToken": token} if token else query
            page = await self._fragment_page(arn, params)
            builder.add(
                page.numbers,
                page.producer_ms,
                page.server_ms,
                page.duration_ms,
                page.size,
            )
            if not (token := page.next_token):
                break
        fragments = await builder.build_async(timestamp_type, limit)
        return fragments, fragments.truncated

    async def has_fragments(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        *,
        timestamp_type: TimestampType = "SERVER_TIMESTAMP",
    ) -> bool:
        """Whether any fragment starts in [start, end]: one call, one result."""
        page = await self._fragment_page(
            arn, self._fragments_query(arn, start, end, timestamp_type, 1)
        )
        return bool(page.numbers)

    async def get_images(
        self,
        arn: str,
        start: datetime,
        end: datetime,
        request: StillsRequest | None = None,
    ) -> list[Image]:
        """Stills of [start, end] (at most 300 s) as ``request`` asks, all pages.

        Without a request: a JPEG of the stream's size every second.
        """
        request = request or StillsRequest()
        query: dict[str, Any] = {
            "StreamARN": arn,
            "ImageSelectorType": request.timestamp_type,
            "StartTimestamp": wire.epoch_seconds(start),
            "EndTimestamp": wire.epoch_seconds(end),
            "SamplingInterval": request.sampling_ms,
            "Format": request.image_format,
        }
        if (width := request.width) is not None:
            query["WidthPixels"] = wire.check_range("WidthPixels", width, 1, 3840)
        if (height := request.height) is not None:
            query["HeightPixels"] = wire.check_range("HeightPixels", height, 1, 2160)
        raw: list[Mapping[str, Any]] = []
        token: str | None = None
        while True:
            params = {**query, "NextToken": token} if token else query
            response = await self._data_json(
                arn, "GetImages", params, StreamNotFoundError
            )
            raw.extend(response.get("Images") or [])
            if not (token := response.get("NextToken")):
                break
        # Base64 of up to 25 stills a page: decoded off the loop.
        return await self._run(wire.images, raw)

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
            StillsRequest(
                sampling_ms=LATEST_IMAGE_INTERVAL_MS,
                image_format=image_format,
                width=width,
                height=height,
            ),
        )
        return next(
            (i.content for i in reversed(images) if i.content is not None), None
        )

    # -- downloads to files -----------------------------------------------------

    async def _body_to_file(
        self, response: aiohttp.ClientResponse, path: Path, offset: int
    ) -> int:
        """Stream a response body into ``path`` from ``offset``; the bytes written.

        Reads on the loop, writes 1 MiB at a time in the executor: memory stays
        flat and no thread waits on the network. Cancelled, it deletes the file
        (after a write already running) before it gives up.
        """
        sink = _FileSink(path, offset)
        try:
            await self._run(sink.open)
            buffer = bytearray()
            async for data in response.content.iter_chunked(DOWNLOAD_CHUNK):
                buffer += data
                if len(buffer) >= DOWNLOAD_CHUNK:
                    await self._run(sink.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await self._run(sink.write, bytes(buffer))
        except asyncio.CancelledError:
            # Nothing half-written is left; a second cancel does not stop that.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(asyncio.ensure_future(self._run(sink.discard)))
            raise
        finally:
            # After discard, a no-op; after a failure the caller (or the retry,
            # which cuts the file back to ``offset``) deals with the rest.
            await asyncio.shield(asyncio.ensure_future(self._run(sink.close)))
        return sink.written

    async def _download(
        self,
        arn: str,
        operation: str,
        params: Mapping[str, Any],
        path: Path,
        offset: int = 0,
    ) -> int:
        """A retried download into ``path`` from ``offset``; the bytes written.

        Every attempt (after a cut connection too) rewrites from ``offset``.
        """

        async def call(endpoint: str) -> int:
            async with self._post(operation, endpoint, params, NoMediaError) as answer:
                return await self._body_to_file(answer, path, offset)

        return await self._data(arn, operation, call)

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
        range: split longer ranges. Every attempt rewrites ``path`` from its
        start; calls are paced to GetClip's 1 TPS per stream.
        """
        params = {
            "StreamARN": arn,
            "ClipFragmentSelector": {
                "FragmentSelectorType": timestamp_type,
                "TimestampRange": {
                    "StartTimestamp": wire.epoch_seconds(start),
                    "EndTimestamp": wire.epoch_seconds(end),
                },
            },
        }
        return await self._download(arn, "GetClip", params, path)

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
            params = {
                "StreamARN": arn,
                "Fragments": numbers[first : first + MEDIA_FRAGMENTS_BATCH],
            }
            total += await self._download(
                arn, "GetMediaForFragmentList", params, path, total
            )
        return total

    async def close(self) -> None:
        """Forget cached endpoints (the injected session belongs to the caller)."""
        self._endpoints.clear()
