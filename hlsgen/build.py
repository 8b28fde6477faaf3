"""`hlsgen build`: spec -> weights -> plan -> golden vectors -> rendered project on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checkpoint, golden, planner, render
from .planner import HardwarePlan
from .spec import Spec, TestbenchSpec


@dataclass
class BuildResult:
    out: Path
    plan: HardwarePlan
    changed: list
    files: int


def run_sequence(model: golden.Model, ids, reset, trace=golden._no_trace) -> np.ndarray:
    """Feed tokens one at a time exactly as the testbench does; returns raw logits [T, V]."""
    rows, state = [], None
    for token, fresh in zip(ids, reset):
        if fresh or state is None:
            state = model.initial_state()
        logits, state = model.forward([int(token)], state, trace)
        rows.append(logits)
    return np.concatenate(rows, axis=0)


def testbench_sequence(model: golden.Model, tb: TestbenchSpec) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and reset flags: prompt + greedy continuation, then a reset and a new prompt."""
    rng = np.random.default_rng(tb.seed)
    vocab = model.spec.vocab
    prompt = [int(t) for t in rng.integers(0, vocab, tb.prompt_tokens)]
    # Each generated token is fed back except the last, whose logits nothing would check.
    continuation = model.generate(prompt, tb.decode_steps)[:-1] if tb.decode_steps else []
    second = [int(t) for t in rng.integers(0, vocab, tb.second_prompt_tokens)]
    first = prompt + continuation
    reset = [1] + [0] * (len(first) - 1) + [1] * bool(second) + [0] * max(len(second) - 1, 0)
    return np.array(first + second, np.int32), np.array(reset, np.uint8)


def golden_vectors(spec: Spec, weights) -> render.GoldenVectors:
    model = golden.Model(spec.model, weights, "fixed", spec.numerics)
    ids, reset = testbench_sequence(model, spec.project.testbench)
    model.arith.saturations.clear()        # count over the testbench sequence only
    logits = run_sequence(model, ids, reset)
    return render.GoldenVectors(ids=ids, reset=reset, logits=logits.astype(np.int32),
                                next_tokens=np.argmax(logits, axis=1).astype(np.int32),
                                saturations=dict(model.arith.saturations))


def build(spec: Spec, out: Path | None = None) -> BuildResult:
    """Everything is computed and rendered in memory first; the disk is touched once, atomically."""
    weights = checkpoint.load(spec)
    plan = planner.plan(spec, weights)
    out = Path(out) if out is not None else spec.project.output
    files = render.project(spec, plan, weights, golden_vectors(spec, weights), out.resolve())
    changed = files.write(out)
    return BuildResult(out=out, plan=plan, changed=changed, files=len(files))
