"""What the archive actions answer: plain JSON of fragments, gaps and saves."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.util import dt as dt_util

from .clip import Gap, find_gaps, fragment_end, fragment_time, summarize
from .export import ClipExport, ImagesExport
from .kvs import Fragment, FragmentList, Image, SessionUrl, TimestampType


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601, or None."""
    return None if value is None else dt_util.as_utc(value).isoformat()


def gaps_json(gaps: list[Gap]) -> list[dict[str, Any]]:
    """The gaps of a range."""
    return [
        {"start": iso(gap.start), "end": iso(gap.end), "seconds": gap.seconds}
        for gap in gaps
    ]


def fragment_json(fragment: Fragment) -> dict[str, Any]:
    """One fragment as list_fragments answers it."""
    return {
        "number": fragment.number,
        "producer_timestamp": iso(fragment.producer_timestamp),
        "server_timestamp": iso(fragment.server_timestamp),
        "duration_ms": fragment.duration_ms,
        "size": fragment.size,
    }


def fragment_list(
    fragments: FragmentList, timestamp_type: TimestampType, limit: int
) -> dict[str, Any]:
    """The fragments and their summary as the action answers (executor: CPU)."""
    summary = summarize(fragments, timestamp_type)
    return {
        "fragments": [fragment_json(f) for f in fragments[:limit]],
        "truncated": len(fragments) > limit,
        "summary": {
            "count": summary.count,
            "recorded_seconds": summary.recorded_seconds,
            "bytes": summary.size,
            "first": iso(summary.start),
            "last_end": iso(summary.end),
            "gaps": gaps_json(summary.gaps),
        },
    }


def saved_clip(
    path: Path, clip: ClipExport, timestamp_type: TimestampType
) -> dict[str, Any]:
    """A saved clip: where, how big, what it covers and where it has holes."""
    fragments = clip.fragments
    return {
        "path": str(path),
        "size": clip.size,
        "start": iso(fragment_time(fragments[0], timestamp_type)),
        "end": iso(fragment_end(fragments[-1], timestamp_type)),
        "fragments": len(fragments),
        "clip_calls": clip.parts,
        "gaps": gaps_json(find_gaps(fragments, timestamp_type)),
    }


def saved_images(folder: Path, images: ImagesExport) -> dict[str, Any]:
    """Saved stills, and the sampled times without one."""
    return {
        "folder": str(folder),
        "files": images.files,
        "no_media": [iso(moment) for moment in images.no_media],
        "errors": [
            {"timestamp": iso(moment), "error": error}
            for moment, error in images.errors
        ],
    }


def playback_url(session: SessionUrl, protocol: str, mode: str) -> dict[str, Any]:
    """A session URL, when it expires, and what it plays."""
    return {
        "url": session.url,
        "expires_at": iso(session.expires_at),
        "protocol": protocol,
        "mode": mode,
    }


def image_name(stream: str, image: Image, extension: str) -> str:
    """A still's file name: the stream and the local time to the millisecond."""
    moment = dt_util.as_local(image.timestamp)
    milliseconds = moment.microsecond // 1000
    # With the UTC offset: a range may hold the hour that repeats in autumn.
    return f"{stream}_{moment:%Y%m%d_%H%M%S}_{milliseconds:03d}{moment:%z}.{extension}"
