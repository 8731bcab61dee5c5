"""A minimal progress line on stderr for long Gram computations (off unless asked for)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts finished tiles and redraws ``label: 37% (120/324 tiles, 4.1 s)`` on one line.

    Written to stderr only, and only when `enabled`; redrawn at most every `interval` seconds.
    """

    def __init__(
        self,
        total: int,
        label: str,
        enabled: bool,
        stream: TextIO | None = None,
        interval: float = 0.2,
    ) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.done = 0
        self.start = self.last = time.perf_counter()

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.perf_counter()
        if self.enabled and (now - self.last >= self.interval or self.done == self.total):
            self.last = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled:
            if self.done < self.total:  # stopped early (an error): show where
                self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        pct = 100 * self.done // max(self.total, 1)
        self.stream.write(
            f"\r{self.label}: {pct:3d}% ({self.done}/{self.total} tiles, {now - self.start:.1f} s)"
        )
        self.stream.flush()
