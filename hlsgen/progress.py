"""What a long step says while it runs: one plain line on stderr as each part starts and ends,
with its time, so that a user (or a log) sees cosim, synth, csim and explore progress.

Lines only, never bars: on a terminal a counter may rewrite its own line (carriage return); when
stderr is not a terminal (CI, a pipe, a notebook) every update is a line of its own.
"""

from __future__ import annotations

import contextlib
import sys
import time


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(what: str):
    """`with step("cosim i"):` prints `cosim i: started`, then `cosim i: done in 12.3 s` (or failed)."""
    say(f"{what}: started")
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        say(f"{what}: failed after {time.perf_counter() - start:.1f} s")
        raise
    say(f"{what}: done in {time.perf_counter() - start:.1f} s")


class Ticker:
    """Progress of a loop of known length that may or may not take long: silent for its first
    `after` seconds, then a line at most every `every` seconds (rewritten in place on a terminal)."""

    def __init__(self, what: str, total: int = 0, after: float = 2.0, every: float = 2.0, stream=None):
        self.what, self.total, self.after, self.every = what, total, after, every
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        now = time.perf_counter()
        if now - self.start < self.after or (self.shown and now - self.last < self.every and done < self.total):
            return
        self.last, self.shown = now, True
        line = f"{self.what}: {done}/{self.total} after {now - self.start:.0f} s"
        if self.stream.isatty():
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
