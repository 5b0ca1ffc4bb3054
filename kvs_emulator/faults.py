"""Faults on demand, per-stream rate limits, and the record of every call."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from .errors import ERROR_STATUS, KvsError

# Per-stream limits from the KVS developer guide: (burst, sustained per second).
TPS_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "GetHLSStreamingSessionURL": (5, 1),
    "GetDASHStreamingSessionURL": (5, 1),
    "GetClip": (1, 1),
    "ListFragments": (5, 5),
    "GetMediaForFragmentList": (5, 5),
    "GetImages": (5, 5),
}


@dataclass
class Fault:
    """One rule: for the next ``count`` calls of ``operation`` do something."""

    operation: str  # an API or playback operation name, or "*"
    count: int = 1  # how many calls it applies to; -1 = until cleared
    error: str | None = None  # answer with this AWS error code
    message: str = "Injected fault."
    status: int | None = None
    latency_s: float = 0.0  # wait this long before answering
    cut_after_bytes: int | None = None  # drop the connection mid-payload
    stream: str | None = None  # only calls on this stream
    skip: int = 0  # let this many matching calls through first

    def matches(self, operation: str, stream: str | None) -> bool:
        """Whether this rule applies to a call."""
        return (
            self.count != 0
            and self.operation in ("*", operation)
            and (self.stream is None or self.stream == stream)
        )


@dataclass
class FaultPlan:
    """What to do to one call, merged from the matching rules."""

    error: KvsError | None = None
    latency_s: float = 0.0
    cut_after_bytes: int | None = None


@dataclass
class CallRecord:
    """One request the emulator answered."""

    time_ms: int
    operation: str
    stream: str | None
    status: int
    error: str | None = None


@dataclass
class Faults:
    """Fault rules, rate limiting and the call log, all resettable."""

    tps_limits: bool = True
    rules: list[Fault] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def reset(self, *, tps_limits: bool) -> None:
        """Clear rules, buckets and the log."""
        self.tps_limits = tps_limits
        self.rules.clear()
        self.calls.clear()
        self._buckets.clear()

    def add(self, rule: Fault) -> None:
        """Add a rule; unknown error codes still work (status 400)."""
        self.rules.append(rule)

    def plan(self, operation: str, stream: str | None) -> FaultPlan:
        """Consume the rules that match this call and say what to do."""
        plan = FaultPlan()
        for rule in self.rules:
            if not rule.matches(operation, stream):
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            if rule.count > 0:
                rule.count -= 1
            plan.latency_s += rule.latency_s
            if rule.error and plan.error is None:
                status = rule.status or ERROR_STATUS.get(rule.error, 400)
                plan.error = KvsError(rule.error, rule.message, status)
            if rule.cut_after_bytes is not None:
                plan.cut_after_bytes = rule.cut_after_bytes
        self.rules = [rule for rule in self.rules if rule.count != 0]
        return plan

    def check_rate(self, operation: str, stream: str) -> None:
        """Token bucket per (operation, stream), on real time, as AWS meters it."""
        if not self.tps_limits or operation not in TPS_LIMITS:
            return
        burst, rate = TPS_LIMITS[operation]
        now = time.monotonic()
        tokens, last = self._buckets.get((operation, stream), (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[(operation, stream)] = (tokens, now)
            raise KvsError(
                "ClientLimitExceededException",
                "Recorded API call rate exceeds the limit for this stream"
                f" ({operation}, {rate:g} TPS). Retry with back-off.",
            )
        self._buckets[(operation, stream)] = (tokens - 1, now)

    def record(self, record: CallRecord) -> None:
        """Append to the call log."""
        self.calls.append(record)

    def calls_json(self, since: int = 0) -> dict[str, Any]:
        """The log from index ``since`` and counts by operation."""
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.operation] = counts.get(call.operation, 0) + 1
        return {
            "total": len(self.calls),
            "counts": counts,
            "calls": [asdict(call) for call in self.calls[since:]],
        }
