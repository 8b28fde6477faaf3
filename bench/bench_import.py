"""Benchmark checkpoint import and code packing on a synthetic MMfreeLM-370M-shaped checkpoint.

    python bench/bench_import.py             # full 370M shapes (24 layers), BF16, ~0.75 GB
    python bench/bench_import.py --layers 2  # quick run

The checkpoint is written tensor by tensor into a temporary directory and deleted afterwards.
It is read back from the page cache, so the import rate is conversion speed, not disk speed.
Peak RSS is the import's own: the high-water mark is reset after the checkpoint is written.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hlsgen.model import checkpoint
from hlsgen.model import spec as speclib
from hlsgen.model import weights  # noqa: E402


def model_370m(layers: int) -> speclib.ModelSpec:
    return speclib.ModelSpec(vocab=32000, hidden=1024, layers=layers, intermediate_size=2816)


def synthetic_tensor(key: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Initialiser-like values, made on demand so only one tensor exists at a time."""
    rng = np.random.default_rng([seed, sum(map(ord, key)), len(key)])
    x = rng.standard_normal(shape, dtype=np.float32)
    if key.endswith("norm.weight"):
        return 1 + 0.1 * x
    if key in ("model.embeddings.weight", "model.lower_bounds"):
        return x
    return 0.02 * x


def write_checkpoint(directory: Path, model: speclib.ModelSpec, dtype: str, seed: int = 0) -> int:
    shapes = weights.expected_shapes(model)
    checkpoint.write_config(directory, model)
    path = directory / checkpoint.SINGLE_FILE
    checkpoint.write_safetensors(path, shapes, lambda key: synthetic_tensor(key, shapes[key], seed), dtype)
    return path.stat().st_size


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS now, VmHWM peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def weights_bytes(w: weights.Weights) -> int:
    arrays = [w.embeddings, w.lower_bounds, w.final_norm]
    for layer in w.layers:
        arrays += [layer.attn_norm, layer.g_norm, layer.mlp_norm]
    for _, proj in w.projections():
        arrays += [proj.codes, proj.norm]
    return sum(a.nbytes for a in arrays)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def bench_packing(codes: np.ndarray) -> None:
    n = codes.size
    for name, pack, unpack in (("2-bit", checkpoint.pack_2bit, checkpoint.unpack_2bit),
                               ("5-trit", checkpoint.pack_5trit, checkpoint.unpack_5trit)):
        packed, t_pack = timed(pack, codes)
        back, t_unpack = timed(unpack, packed, n)
        assert np.array_equal(back, codes.reshape(-1))
        print(f"  {name:6s}  pack {n / t_pack / 1e6:7.1f} M codes/s   unpack {n / t_unpack / 1e6:7.1f} M codes/s   "
              f"({n / 1e6:.1f} M codes -> {packed.nbytes / 1e6:.1f} MB)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24, help="number of layers (370M has 24)")
    parser.add_argument("--dtype", default="BF16", choices=checkpoint.WRITABLE)
    parser.add_argument("--dir", default=None, help="where to put the temporary checkpoint")
    args = parser.parse_args(argv)
    model = model_370m(args.layers)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="hlsgen-bench-") as tmp:
        directory = Path(tmp)
        size, t_write = timed(write_checkpoint, directory, model, args.dtype)
        print(f"checkpoint: 370M shapes, {args.layers} layers, {args.dtype}, {size / 1e6:.1f} MB "
              f"(written in {t_write:.1f} s)")

        spec = speclib.load(directory)
        rss_before = status_kb("VmRSS")
        reset_peak_rss()
        w, t_load = timed(checkpoint.load, spec)
        peak = status_kb("VmHWM")

    kept = weights_bytes(w)
    print(f"import:     {t_load:.1f} s, {size / 1e6 / t_load:.0f} MB/s of checkpoint bytes")
    print(f"memory:     peak RSS during import {peak / 1024:.0f} MB (RSS before {rss_before / 1024:.0f} MB; "
          f"imported Weights hold {kept / 1e6:.0f} MB; checkpoint {size / 1e6:.0f} MB)")
    print(f"            process ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          f"(includes writing the checkpoint)")
    print("packing (lm_head codes):")
    bench_packing(w.lm_head.codes)


if __name__ == "__main__":
    main()
