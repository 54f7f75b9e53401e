"""Progress of long work on stderr: a bar for fractions, a counter for rows and bytes.

Written here rather than taken from tqdm: the distribution needs only requests, NumPy and
pyarrow, and a bar on one terminal line is a few lines of code."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """Draws `stage [#####.....]  42 %` (or `stage 12,000 rows`) on one line of `stream`,
    redrawn at most ten times a second; a new stage starts a new line. Silent when off."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._stage: str | None = None
        self._drawn = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        """The client's progress callback: `fraction` of `stage` is done."""
        fraction = min(1.0, max(0.0, fraction))
        filled = round(WIDTH * fraction)
        bar = "#" * filled + "." * (WIDTH - filled)
        self._draw(stage, f"[{bar}] {fraction * 100:3.0f} %", final=fraction >= 1.0)

    def count(self, stage: str, n: int, unit: str) -> None:
        """`n` units of `stage` so far (rows written, bytes downloaded)."""
        self._draw(stage, f"{n:,} {unit}", final=False)

    def _draw(self, stage: str, text: str, *, final: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage != self._stage:
            self.end()
            self._stage = stage
        elif not final and now - self._drawn < 0.1:
            return
        self._drawn = now
        self.stream.write(f"\r{stage:<8} {text}")
        self.stream.flush()

    def end(self) -> None:
        """Finish the current line."""
        if self.enabled and self._stage is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._stage = None
