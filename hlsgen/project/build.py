"""`hlsgen build`: spec -> weights -> plan -> golden vectors -> rendered project on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hlsgen.model import checkpoint
from hlsgen.model import golden
from hlsgen.hardware import memories, planner
from hlsgen.project import render
from hlsgen.project.calls import run_calls, testbench_calls
from hlsgen.hardware.planner import HardwarePlan
from hlsgen.model.spec import Spec
from hlsgen.errors import HlsgenError


@dataclass
class BuildResult:
    out: Path
    plan: HardwarePlan
    changed: list
    files: int


def golden_vectors(spec: Spec, weights) -> render.GoldenVectors:
    model = golden.Model(spec.model, weights, "fixed", spec.numerics)
    calls = testbench_calls(model, spec.project.testbench, spec.hardware.batch)
    model.arith.saturations.clear()        # count over the testbench calls only
    logits = run_calls(model, calls)
    return render.GoldenVectors(calls=calls, logits=logits.astype(np.int32),
                                next_tokens=np.argmax(logits, axis=1).astype(np.int32),
                                saturations=dict(model.arith.saturations))


def build(spec: Spec, out: Path | None = None) -> BuildResult:
    """Everything is computed and rendered in memory first; the disk is touched once, atomically."""
    weights = checkpoint.load(spec)
    plan = planner.plan(spec, weights)
    memories.check_budget(memories.plan_memories(plan))     # every pipelined loop within its banks' ports
    out = Path(out) if out is not None else spec.project.output
    try:
        root = out.resolve()
    except (RuntimeError, OSError) as exc:      # a symlink loop (RuntimeError before Python 3.13)
        raise HlsgenError(f"project.output: {out} cannot be resolved ({exc}) (allowed: a path without symlink "
                          f"loops)") from None
    files = render.project(spec, plan, weights, golden_vectors(spec, weights), root)
    changed = files.write(out)
    return BuildResult(out=out, plan=plan, changed=changed, files=len(files))
