"""What the hardware numerics cost in quality: the float and the fixed golden models scored on the
same held-out text (perplexity, top-1 agreement, logit differences).

The text is the corpus of the shipped byte-level example (examples/tiny_lm): the top-level
modules of the Python standard library (PSF licence), split by file. The split rule lives here
so that training (examples/train_tiny.py), the benchmark and the tests all read the same files.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hlsgen.model import golden
from hlsgen.errors import HlsgenError

HELD_OUT_EVERY = 10     # every 10th file, in sorted order starting with the 6th, is held out
HELD_OUT_OFFSET = 5


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_split() -> dict:
    """The corpus split: the stdlib's top-level *.py files, sorted by name; machine-generated
    `_sysconfigdata*` modules excluded; file k is held out when k % 10 == 5."""
    names = sorted(p.name for p in stdlib_dir().glob("*.py") if not p.name.startswith("_sysconfigdata"))
    held = [n for k, n in enumerate(names) if k % HELD_OUT_EVERY == HELD_OUT_OFFSET]
    return {"corpus": "Python standard library, top-level *.py modules (PSF licence)",
            "rule": f"sorted by name, _sysconfigdata* excluded; file k held out when "
                    f"k % {HELD_OUT_EVERY} == {HELD_OUT_OFFSET}; files concatenated in that order",
            "train": [n for n in names if n not in held], "held_out": held}


def read_files(names: list[str]) -> bytes:
    """The named stdlib files, concatenated in the given order."""
    missing = [n for n in names if not (stdlib_dir() / n).is_file()]
    if missing:
        raise HlsgenError(f"corpus: {missing[0]} is not in {stdlib_dir()} "
                          f"({len(missing)} files missing; the split was made with another Python version)")
    return b"".join((stdlib_dir() / n).read_bytes() for n in names)


def windows(text: bytes, length: int, count: int) -> np.ndarray:
    """`count` windows of `length` bytes spread evenly over `text` (non-overlapping when it is
    long enough), as int64 [count, length]."""
    data = np.frombuffer(text, np.uint8)
    if len(data) < length:
        raise HlsgenError(f"corpus: {len(data)} bytes is shorter than one window of {length}")
    starts = np.linspace(0, len(data) - length, count).astype(np.int64)
    return np.stack([data[s:s + length] for s in starts]).astype(np.int64)


def log_probs(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def window_logits(model: golden.Model, windows_: np.ndarray) -> np.ndarray:
    """Float logits [N, length-1, V] predicting each next byte; every window starts from state zero."""
    return np.stack([model.to_float(model.prefill(w[:-1])[0]) for w in windows_])


def cross_entropy_of(logits: np.ndarray, windows_: np.ndarray) -> float:
    """Mean next-byte cross-entropy in nats."""
    lp = log_probs(logits)
    targets = windows_[:, 1:]
    return float(-np.take_along_axis(lp, targets[..., None], axis=-1).mean())


def cross_entropy(model: golden.Model, windows_: np.ndarray) -> float:
    return cross_entropy_of(window_logits(model, windows_), windows_)


@dataclass(frozen=True)
class Comparison:
    positions: int
    loss_float: float
    loss_fixed: float
    top1_agreement: float       # share of positions where both argmaxes agree
    max_abs_logit_diff: float
    saturations: dict

    @property
    def ppl_float(self) -> float:
        return float(np.exp(self.loss_float))

    @property
    def ppl_fixed(self) -> float:
        return float(np.exp(self.loss_fixed))

    @property
    def ppl_ratio(self) -> float:
        return self.ppl_fixed / self.ppl_float


def compare(float_model: golden.Model, fixed_model: golden.Model, windows_: np.ndarray) -> Comparison:
    """Score both numerics on the same windows."""
    fixed_model.arith.saturations.clear()
    lf, lx = window_logits(float_model, windows_), window_logits(fixed_model, windows_)
    return Comparison(positions=int(lf.shape[0] * lf.shape[1]),
                      loss_float=cross_entropy_of(lf, windows_), loss_fixed=cross_entropy_of(lx, windows_),
                      top1_agreement=float(np.mean(lf.argmax(-1) == lx.argmax(-1))),
                      max_abs_logit_diff=float(np.max(np.abs(lf - lx))),
                      saturations=dict(fixed_model.arith.saturations))
