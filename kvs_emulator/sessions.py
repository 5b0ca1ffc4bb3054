"""HLS and DASH streaming sessions: tokens, expiry, and the per-stream cap."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from .errors import KvsError
from .streams import TimestampKind

Protocol = Literal["HLS", "DASH"]
PlaybackMode = Literal["LIVE", "LIVE_REPLAY", "ON_DEMAND"]

# KVS keeps at most this many sessions per stream and protocol; creating one more
# closes the oldest.
MAX_SESSIONS_PER_STREAM = 10


@dataclass
class Session:
    """What a session URL grants: one stream, one mode, until it expires."""

    token: str
    protocol: Protocol
    stream_name: str
    stream_arn: str
    mode: PlaybackMode
    kind: TimestampKind
    start_ms: int | None
    end_ms: int | None
    created_ms: int
    expires_ms: int
    max_results: int
    container: str = "FRAGMENTED_MP4"
    discontinuity: str = "ALWAYS"
    display_timestamp: str = "NEVER"
    display_fragment_number: str = "NEVER"
    revoked: bool = False


class SessionRegistry:
    """Issued sessions by token."""

    def __init__(self) -> None:
        """Start with none."""
        self._sessions: dict[str, Session] = {}

    def clear(self) -> None:
        """Forget every session."""
        self._sessions.clear()

    def __len__(self) -> int:
        """Number of sessions ever issued and not yet forgotten."""
        return len(self._sessions)

    def create(self, session: Session, now_ms: int) -> Session:
        """Register ``session``; revoke the oldest beyond the per-stream cap."""
        active = sorted(
            (
                s
                for s in self._sessions.values()
                if s.stream_arn == session.stream_arn
                and s.protocol == session.protocol
                and not s.revoked
                and s.expires_ms > now_ms
            ),
            key=lambda s: s.created_ms,
        )
        for old in active[: max(0, len(active) - MAX_SESSIONS_PER_STREAM + 1)]:
            old.revoked = True
        # Expired sessions are dropped here so the registry stays small.
        self._sessions = {
            t: s for t, s in self._sessions.items() if s.expires_ms > now_ms
        }
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None, now_ms: int) -> Session:
        """Return the live session for ``token`` or raise the 403 KVS answers."""
        session = self._sessions.get(token or "")
        if session is None or session.revoked:
            raise KvsError(
                "NotAuthorizedException",
                "The streaming session is not valid or has been closed.",
                403,
            )
        if session.expires_ms <= now_ms:
            raise KvsError(
                "NotAuthorizedException", "The streaming session has expired.", 403
            )
        return session

    def expire(self, stream_name: str | None, now_ms: int, keep_newest: int = 0) -> int:
        """Expire sessions (of one stream), all but the newest ``keep_newest``."""
        live = sorted(
            (
                s
                for s in self._sessions.values()
                if stream_name in (None, s.stream_name) and s.expires_ms > now_ms
            ),
            key=lambda s: s.created_ms,
        )
        doomed = live[: max(0, len(live) - keep_newest)]
        for session in doomed:
            session.expires_ms = now_ms
        return len(doomed)


def new_token() -> str:
    """An opaque, URL-safe session token."""
    return secrets.token_urlsafe(48)
