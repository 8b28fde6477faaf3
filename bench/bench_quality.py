"""What the fixed-point datapath costs in quality, on held-out text of the shipped trained model.

Scores the float (fp32, as the reference) and the fixed (bit-exact hardware) golden models of
examples/tiny_lm.yaml on the same held-out windows of its corpus, each window from the zero
state, and prints both perplexities, their ratio (goal: fixed within 1% of float), the top-1
agreement and the largest logit difference.

    python bench/bench_quality.py [--windows 32] [--length 129] [--config examples/tiny_lm.yaml]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hlsgen.model import checkpoint
from hlsgen.model import golden
from hlsgen.model import quality
from hlsgen.model import spec as spec_mod

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_lm.yaml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLE)
    parser.add_argument("--windows", type=int, default=32, help="held-out windows (default: 32)")
    parser.add_argument("--length", type=int, default=129, help="bytes per window; length-1 scored (default: 129)")
    args = parser.parse_args(argv)

    spec = spec_mod.load(args.config)
    split = json.loads((spec.weights.path / "split.json").read_text())
    text = quality.read_files(split["held_out"])
    windows = quality.windows(text, args.length, args.windows)
    w = checkpoint.load(spec)
    start = time.perf_counter()
    c = quality.compare(golden.Model(spec.model, w, "float"), golden.Model(spec.model, w, "fixed", spec.numerics),
                        windows)
    print(f"{args.config}: {c.positions} held-out positions ({args.windows} windows of {args.length - 1} "
          f"predictions, {len(text):,} held-out bytes), scored in {time.perf_counter() - start:.1f} s")
    print(f"  perplexity float   {c.ppl_float:.4f}   (loss {c.loss_float:.4f} nats/byte)")
    print(f"  perplexity fixed   {c.ppl_fixed:.4f}   (loss {c.loss_fixed:.4f} nats/byte)")
    print(f"  fixed / float      {c.ppl_ratio:.5f}   (goal: <= 1.01)")
    print(f"  top-1 agreement    {c.top1_agreement:.4%}")
    print(f"  max |logit diff|   {c.max_abs_logit_diff:.5f}")
    print(f"  saturations        {', '.join(f'{k} {v}' for k, v in c.saturations.items()) or 'none'}")
    return 0 if c.ppl_ratio <= 1.01 else 1


if __name__ == "__main__":
    raise SystemExit(main())
