"""Streams and their fragment timelines.

A stream stores no fragments. Its timeline is a function of the clock: fragment
``k`` was produced at producer time ``k * fragment_ms`` and exists when it started
after the stream's history began, finished before "now", is still within the
retention period and does not fall in a gap (the camera was offline). That keeps
hours of history free, makes live video appear as the clock moves, and lets tests
jump the clock around.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from .errors import KvsError, invalid_argument, not_found

TimestampKind = Literal["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"]
TIMESTAMP_KINDS: tuple[TimestampKind, ...] = ("PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP")

STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,256}$")
STREAM_ARN = re.compile(
    r"^arn:[a-z\d-]+:kinesisvideo:([a-z0-9-]+):([0-9]+):stream/([a-zA-Z0-9_.-]+)/([0-9]+)$"
)
# Real fragment numbers are ~47 decimal digits, far beyond int64. Ours: a fixed
# prefix, the stream's serial and the fragment index, zero padded so that within a
# stream numeric order, string order and time order agree.
FRAGMENT_PREFIX = "9134385233318"
SERIAL_DIGITS = 5
INDEX_DIGITS = 29
# AWS ends an ARN with the creation time in ms: 13 digits. Ours are as many.
ARN_SUFFIX_DIGITS = 13


def arn_suffix(name: str, incarnation: int) -> str:
    """The ARN's trailing number for the ``incarnation``-th stream named ``name``.

    Derived from the name, not the clock, so an emulator started again with the
    same streams hands out the same ARNs (a Home Assistant entry keeps working
    across restarts). A name deleted and created again in the same process is a
    new stream with a new ARN, as in AWS.
    """
    digest = hashlib.sha256(f"{name}/{incarnation}".encode()).digest()
    low = 10 ** (ARN_SUFFIX_DIGITS - 1)
    return str(low + int.from_bytes(digest[:8], "big") % (9 * low))


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment as ListFragments describes it."""

    index: int
    number: str
    producer_ms: int
    server_ms: int
    duration_ms: int
    size: int

    def start_ms(self, kind: TimestampKind) -> int:
        """Start time on the requested clock."""
        return self.producer_ms if kind == "PRODUCER_TIMESTAMP" else self.server_ms


@dataclass
class Stream:
    """A Kinesis video stream and the rules that shape its timeline."""

    name: str
    arn: str
    serial: int
    created_ms: int
    fragment_ms: int
    history_start_ms: int
    retention_hours: int = 24
    media_type: str = "video/h264"
    device_name: str | None = None
    kms_key_id: str = "arn:aws:kms:us-east-1:000000000000:alias/aws/kinesisvideo"
    version: str = "1"
    status: str = "ACTIVE"
    tags: dict[str, str] = field(default_factory=dict)
    # Camera clock minus server clock: PRODUCER timestamps jump with this.
    producer_offset_ms: int = 0
    # Offline periods in server time, [start, end); end None = still offline.
    gaps: list[tuple[int, int | None]] = field(default_factory=list)
    # Fragment sizes by pool index, filled in by the owner (depends on the media).
    sizes: tuple[int, ...] = (0,)

    # -- timeline ---------------------------------------------------------------

    def producer_ms_of(self, index: int) -> int:
        """Producer start time of fragment ``index``."""
        return index * self.fragment_ms

    def server_ms_of(self, index: int) -> int:
        """Server (ingestion) start time of fragment ``index``."""
        return index * self.fragment_ms - self.producer_offset_ms

    def fragment_number(self, index: int) -> str:
        """The decimal fragment number of fragment ``index``."""
        return (
            f"{FRAGMENT_PREFIX}{self.serial:0{SERIAL_DIGITS}d}{index:0{INDEX_DIGITS}d}"
        )

    def index_of_number(self, number: str) -> int | None:
        """Fragment index encoded in ``number`` if it belongs to this stream."""
        prefix = f"{FRAGMENT_PREFIX}{self.serial:0{SERIAL_DIGITS}d}"
        if (
            len(number) != len(prefix) + INDEX_DIGITS
            or not number.startswith(prefix)
            or not number.isdigit()
        ):
            return None
        return int(number[len(prefix) :])

    def _in_gap(self, server_ms: int) -> bool:
        return any(
            start <= server_ms and (end is None or server_ms < end)
            for start, end in self.gaps
        )

    def _index_bounds(self, now_ms: int) -> tuple[int, int]:
        """Indices [first, last] that may exist now, ignoring gaps."""
        oldest_server_ms = max(
            self.history_start_ms, now_ms - self.retention_hours * 3_600_000
        )
        # server_ms_of(k) >= oldest  and  server_ms_of(k) + fragment_ms <= now
        first = -(-(oldest_server_ms + self.producer_offset_ms) // self.fragment_ms)
        last = (now_ms - self.fragment_ms + self.producer_offset_ms) // self.fragment_ms
        return first, last

    def exists(self, index: int, now_ms: int) -> bool:
        """Whether fragment ``index`` is in the archive at ``now_ms``."""
        first, last = self._index_bounds(now_ms)
        return first <= index <= last and not self._in_gap(self.server_ms_of(index))

    def fragment(self, index: int) -> Fragment:
        """Describe fragment ``index`` (whether or not it exists)."""
        return Fragment(
            index=index,
            number=self.fragment_number(index),
            producer_ms=self.producer_ms_of(index),
            server_ms=self.server_ms_of(index),
            duration_ms=self.fragment_ms,
            size=self.sizes[index % len(self.sizes)],
        )

    def fragments(
        self,
        now_ms: int,
        kind: TimestampKind = "SERVER_TIMESTAMP",
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Iterator[Fragment]:
        """Existing fragments whose start lies in [start_ms, end_ms], in time order.

        Both ends are inclusive, as in KVS: a fragment is selected by its start.
        """
        first, last = self._index_bounds(now_ms)
        shift = self.producer_offset_ms if kind == "SERVER_TIMESTAMP" else 0
        if start_ms is not None:
            first = max(first, -(-(start_ms + shift) // self.fragment_ms))
        if end_ms is not None:
            last = min(last, (end_ms + shift) // self.fragment_ms)
        for index in range(first, last + 1):
            if not self._in_gap(self.server_ms_of(index)):
                yield self.fragment(index)

    def _missing(self, first: int, last: int) -> int:
        """How many indices in [first, last] fall in gaps (gaps may overlap)."""
        spans: list[tuple[int, int]] = []
        for start, end in self.gaps:
            gap_first = -(-(start + self.producer_offset_ms) // self.fragment_ms)
            gap_last = (
                last
                if end is None
                else -(-(end + self.producer_offset_ms) // self.fragment_ms) - 1
            )
            gap_first, gap_last = max(gap_first, first), min(gap_last, last)
            if gap_first <= gap_last:
                spans.append((gap_first, gap_last))
        spans.sort()
        covered, current = 0, None
        for gap_first, gap_last in spans:
            if current is None or gap_first > current[1] + 1:
                if current is not None:
                    covered += current[1] - current[0] + 1
                current = (gap_first, gap_last)
            else:
                current = (current[0], max(current[1], gap_last))
        if current is not None:
            covered += current[1] - current[0] + 1
        return covered

    def first_index(self) -> int:
        """Index of the first fragment the stream ever had."""
        return -(-(self.history_start_ms + self.producer_offset_ms) // self.fragment_ms)

    def sequence_of(self, index: int) -> int:
        """Position of fragment ``index`` among all fragments ever produced.

        Stable while old fragments expire, so HLS media sequence numbers built on
        it only ever grow.
        """
        first = self.first_index()
        if index <= first:
            return 0
        return (index - first) - self._missing(first, index - 1)

    def gaps_before(self, index: int) -> int:
        """Number of gaps that ended before fragment ``index`` (discontinuities)."""
        server_ms = self.server_ms_of(index)
        return sum(
            1
            for start, end in self.gaps
            if start >= self.history_start_ms and end is not None and end <= server_ms
        )

    def latest_fragment(self, now_ms: int) -> Fragment | None:
        """The newest existing fragment, if any."""
        first, last = self._index_bounds(now_ms)
        # Walk back over at most the length of a gap; gaps are few and bounded.
        index = last
        while index >= first:
            server_ms = self.server_ms_of(index)
            gap_start = next(
                (
                    start
                    for start, end in self.gaps
                    if start <= server_ms and (end is None or server_ms < end)
                ),
                None,
            )
            if gap_start is None:
                return self.fragment(index)
            # Jump to the last fragment before the gap.
            index = (gap_start - 1 + self.producer_offset_ms) // self.fragment_ms
        return None

    # -- camera on/off ----------------------------------------------------------

    @property
    def online(self) -> bool:
        """False while an open-ended gap (camera offline) is in progress."""
        return not any(end is None for _, end in self.gaps)

    def go_offline(self, now_ms: int) -> None:
        """The camera stops sending: an open gap starts now."""
        if self.online:
            self.gaps.append((now_ms, None))

    def go_online(self, now_ms: int) -> None:
        """The camera sends again from now on."""
        self.gaps = [
            (start, now_ms if end is None else end) for start, end in self.gaps
        ]

    def add_gap(self, start_ms: int, end_ms: int) -> None:
        """Remove [start_ms, end_ms) of server time from the timeline."""
        if end_ms <= start_ms:
            raise invalid_argument("A gap must end after it starts.")
        self.gaps.append((start_ms, end_ms))

    # -- descriptions -----------------------------------------------------------

    def info(self) -> dict[str, object]:
        """StreamInfo as DescribeStream and ListStreams answer it."""
        info: dict[str, object] = {
            "StreamName": self.name,
            "StreamARN": self.arn,
            "MediaType": self.media_type,
            "KmsKeyId": self.kms_key_id,
            "Version": self.version,
            "Status": self.status,
            "CreationTime": self.created_ms / 1000,
            "DataRetentionInHours": self.retention_hours,
        }
        if self.device_name:
            info["DeviceName"] = self.device_name
        return info


class StreamRegistry:
    """The account's streams, by name, with ARN lookups."""

    def __init__(self, *, region: str, account_id: str, fragment_ms: int) -> None:
        """Start empty."""
        self.region = region
        self.account_id = account_id
        self.fragment_ms = fragment_ms
        self._streams: dict[str, Stream] = {}
        self._serials = itertools.count(1)
        # How often each name was created since the start (or the last clear).
        self._incarnations: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Stream]:
        """Streams sorted by name."""
        return iter(sorted(self._streams.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        """Number of streams."""
        return len(self._streams)

    def clear(self) -> None:
        """Forget every stream: ARNs start over as in a new process."""
        self._streams.clear()
        self._incarnations.clear()

    def create(
        self,
        name: str,
        *,
        now_ms: int,
        history_ms: int = 0,
        retention_hours: int = 24,
        media_type: str = "video/h264",
        device_name: str | None = None,
        producing: bool = True,
        tags: dict[str, str] | None = None,
        kms_key_id: str | None = None,
        sizes: tuple[int, ...] = (0,),
    ) -> Stream:
        """Create a stream whose history begins ``history_ms`` before now."""
        if not STREAM_NAME.match(name):
            raise invalid_argument(f"Stream name {name!r} is not valid.")
        if name in self._streams:
            raise KvsError(
                "ResourceInUseException", f"The stream {name} already exists."
            )
        if retention_hours < 0:
            raise invalid_argument("DataRetentionInHours must be at least 0.")
        incarnation = self._incarnations[name]
        self._incarnations[name] += 1
        suffix = arn_suffix(name, incarnation)
        stream = Stream(
            name=name,
            arn=f"arn:aws:kinesisvideo:{self.region}:{self.account_id}:stream/{name}/{suffix}",
            serial=next(self._serials),
            # A real stream holds nothing from before it was created.
            created_ms=now_ms - history_ms,
            fragment_ms=self.fragment_ms,
            history_start_ms=now_ms - history_ms,
            retention_hours=retention_hours,
            media_type=media_type,
            device_name=device_name,
            tags=dict(tags or {}),
            sizes=sizes,
        )
        if kms_key_id:
            stream.kms_key_id = kms_key_id
        if not producing:
            stream.go_offline(stream.history_start_ms)
        self._streams[name] = stream
        return stream

    def delete(self, stream: Stream) -> None:
        """Remove ``stream``."""
        self._streams.pop(stream.name, None)

    def get(self, name: str | None = None, arn: str | None = None) -> Stream:
        """Find a stream by name or ARN, as the API's StreamName/StreamARN pair."""
        if name is None and arn is None:
            raise invalid_argument("Either StreamName or StreamARN must be specified.")
        if arn is not None:
            match = STREAM_ARN.match(arn)
            if match is None:
                raise invalid_argument(f"StreamARN {arn!r} is not valid.")
            stream = self._streams.get(match.group(3))
            if stream is None or stream.arn != arn:
                raise not_found(f"The stream with ARN {arn} does not exist.")
            if name is not None and name != stream.name:
                raise invalid_argument("StreamName and StreamARN do not match.")
            return stream
        assert name is not None
        if not STREAM_NAME.match(name):
            raise invalid_argument(f"StreamName {name!r} is not valid.")
        found = self._streams.get(name)
        if found is None:
            raise not_found(f"The stream {name} does not exist.")
        return found

    def list(self, prefix: str | None = None) -> list[Stream]:
        """Streams whose name begins with ``prefix``, sorted by name."""
        names = sorted(self._streams)
        if prefix:
            names = names[bisect.bisect_left(names, prefix) :]
            names = list(itertools.takewhile(lambda n: n.startswith(prefix), names))
        return [self._streams[n] for n in names]
