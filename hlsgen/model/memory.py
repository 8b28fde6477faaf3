"""The memory a run will need, estimated from the model's shape before anything is allocated, so
that `golden`, `build` and `generate` refuse a model that cannot fit with the figure and the way
out, instead of dying in NumPy (or in the kernel's OOM killer) minutes later.

The estimate counts what the golden model holds (weights.py, golden.py): per projection weight
one int8 code plus the float32 copy the BLAS product uses, the float32 embedding table, the
largest latent tensor twice while it is ternarised, the activations of the tokens run at once
(int64/float64 rows as wide as the widest layer, a handful alive at a time, plus the logits),
and for `build` the rendered project held in memory (the weight tables as text and as bytes).
It errs high: measured peaks are in tests/test_memory.py.
"""

from __future__ import annotations

import os
import re

from hlsgen.errors import HlsgenError
from hlsgen.model.spec import ModelSpec

BASELINE = 64 << 20         # the interpreter, NumPy, Jinja and the rest of hlsgen, loaded (measured: 41 MiB)
LIVE_ROWS = 8               # activation rows of the widest layer alive at once, per token
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def estimate(model: ModelSpec, tokens: int, build: bool = False) -> dict[str, int]:
    """Bytes per part of a run over `tokens` tokens at once."""
    shapes = model.projection_shapes()
    per_layer = sum(rows * cols for kind, (rows, cols) in shapes.items() if kind != "lm_head")
    weights = per_layer * model.layers + model.vocab * model.hidden
    widest = max(model.vocab, 2 * model.intermediate, model.inner, model.hidden)
    parts = {
        "ternary weights (int8 codes + float32 copy)": 5 * weights,
        "embedding table (float32)": 4 * model.vocab * model.hidden,
        "largest tensor while ternarised": 8 * max(rows * cols for rows, cols in shapes.values()),
        "activations and logits": 8 * tokens * (LIVE_ROWS * widest + 2 * model.vocab),
        "interpreter and libraries": BASELINE,
    }
    if build:
        # Lane words as C hex text (about 0.7 characters per weight) and the project's bytes.
        parts["rendered project (text and bytes)"] = 2 * weights
    return parts


def parse_size(text: str) -> int:
    """'512M', '4G', '1.5g', '1048576' -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not match:
        raise HlsgenError(f"--max-memory: {text!r} is not a size (allowed: bytes, or a number with K, M, G or T, "
                          f"e.g. 512M, 4G)")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not 0 < size < 1 << 60:
        raise HlsgenError(f"--max-memory: {text!r} is out of range (allowed: more than 0)")
    return int(size)


def available() -> int | None:
    """Memory the system can give this process now (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def check(model: ModelSpec, tokens: int, what: str, limit: str | None = None, build: bool = False) -> int:
    """Refuse (HlsgenError) when the estimate exceeds --max-memory or the available memory;
    returns the estimate in bytes."""
    parts = estimate(model, max(1, tokens), build)
    need = sum(parts.values())
    if limit is not None:
        cap, source = parse_size(limit), f"--max-memory {limit}"
    else:
        cap, source = available(), "the memory available now"
    if cap is not None and need > cap:
        biggest = max(parts, key=parts.get)
        raise HlsgenError(f"{what}: this run needs about {gib(need)} of memory, more than {source} "
                          f"({gib(cap)}); the largest part is {biggest}, {gib(parts[biggest])} (allowed: a smaller "
                          f"model or fewer tokens, more memory, or a higher --max-memory if the estimate is too "
                          f"cautious)")
    return need
