"""A minimal progress reporter for long training runs: silent unless asked, stderr only.

Book notebooks are compared cell by cell (nbval) on their stdout; the reporter never writes there.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Reports ``label: step k/total  loss …`` on stderr, at most every `interval` seconds.

    With ``enabled=False`` (the default everywhere) every call is a no-op.
    """

    def __init__(
        self, total: int, label: str = "training", enabled: bool = False, interval: float = 0.5
    ) -> None:
        self.total, self.label, self.enabled, self.interval = total, label, enabled, interval
        self._last = -float("inf")

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval or step == self.total:
            self._last = now
            end = "\n" if step == self.total else ""
            sys.stderr.write(f"\r{self.label}: step {step}/{self.total}  loss {loss:.3e}{end}")
            sys.stderr.flush()
