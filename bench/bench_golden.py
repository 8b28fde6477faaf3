"""Golden model speed on one 370M-shaped layer (H = D = 1024, I = 2816, L = 1), random weights.

The vocabulary is cut to 256 (the 370M model has 32000) so that the lm_head, which is not part
of a layer, does not dominate the figures.  Prints tokens/s for float and fixed numerics, for a
prefill pass and for token-by-token decode.

    python bench/bench_golden.py [--prefill-tokens 128] [--decode-tokens 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hlsgen.model import golden
from hlsgen.model import weights
from hlsgen.model.spec import ModelSpec

LAYER_370M = ModelSpec(vocab=256, hidden=1024, layers=1, intermediate_size=2816)


def best_seconds(run, repeat: int) -> float:
    """Fastest of `repeat` timed runs (the least disturbed by other load on the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    w = weights.random_weights(LAYER_370M, seed=0)
    print(f"one 370M-shaped layer: H={LAYER_370M.hidden} D={LAYER_370M.inner} I={LAYER_370M.intermediate} "
          f"L=1, vocab {LAYER_370M.vocab} (not 32000, so the lm_head does not dominate)")
    print(f"random weights generated and ternarised in {time.perf_counter() - start:.2f} s\n")

    ids = np.random.default_rng(0).integers(0, LAYER_370M.vocab, max(args.prefill_tokens, args.decode_tokens))
    print(f"{'numerics':<9} {'pass':<8} {'tokens':>6} {'seconds':>8} {'tokens/s':>9}")
    for mode in golden.MODES:
        model = golden.Model(LAYER_370M, w, mode)
        model.prefill(ids[:2])      # builds cached tables (fp32 codes) outside the timing
        passes = (("prefill", args.prefill_tokens, lambda: model.prefill(ids[:args.prefill_tokens])),
                  ("decode", args.decode_tokens, lambda: model.decode(ids[:args.decode_tokens])))
        for name, tokens, run in passes:
            seconds = best_seconds(run, args.repeat)
            print(f"{mode:<9} {name:<8} {tokens:>6} {seconds:>8.3f} {tokens / seconds:>9.1f}")


if __name__ == "__main__":
    main()
