"""The emulator's clock: wall time that tests can shift, freeze and advance."""

from __future__ import annotations

import threading
import time


class Clock:
    """Epoch time in milliseconds, real by default.

    Fragments, sessions and retention all read this clock, so a test that advances
    it sees new live fragments appear and session URLs expire without waiting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._frozen_ms: int | None = None

    def now_ms(self) -> int:
        """Return the emulated time as epoch milliseconds."""
        with self._lock:
            if self._frozen_ms is not None:
                return self._frozen_ms
            return int(time.time() * 1000) + self._offset_ms

    def set(self, epoch_ms: int, *, frozen: bool | None = None) -> None:
        """Jump to ``epoch_ms``; keep running unless frozen (or already frozen)."""
        with self._lock:
            keep_frozen = self._frozen_ms is not None if frozen is None else frozen
            if keep_frozen:
                self._frozen_ms = epoch_ms
            else:
                self._frozen_ms = None
                self._offset_ms = epoch_ms - int(time.time() * 1000)

    def advance(self, milliseconds: int) -> None:
        """Move the clock forward (or back, with a negative value)."""
        self.set(self.now_ms() + milliseconds)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) the clock at its current reading."""
        self.set(self.now_ms(), frozen=frozen)

    @property
    def frozen(self) -> bool:
        """Whether the clock is stopped."""
        return self._frozen_ms is not None

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset_ms = 0
            self._frozen_ms = None
