"""The memory estimate (hlsgen/model/memory.py) against the peak RSS of real runs: never below it
(a run it lets through must fit), and not so far above it that it refuses runs that would fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_config
from hlsgen.model import memory, spec as spec_mod

ROOT = Path(__file__).resolve().parent.parent


def peak_rss(*argv) -> int:
    """Peak resident bytes of `hlsgen ARGV` run in a fresh child of a fresh child (so that
    RUSAGE_CHILDREN holds that one run only)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "assert r.returncode == 0, r.stderr; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "hlsgen.cli", *map(str, argv)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout) * 1024


@pytest.mark.parametrize("command", ["golden", "build"])
def test_the_estimate_covers_the_measured_peak_and_stays_close(tmp_path, command):
    config = write_config(tmp_path, "wide", model={"hidden": 768, "layers": 3, "intermediate_size": 1536},
                          hardware={"weights": "hbm", "parallelism": {"pe": 16, "simd": 16}})
    spec = spec_mod.load(config)
    tokens = 4 if command == "golden" else max(spec.project.testbench.prompt_tokens, 1)
    argv = [command, config] + (["--ids", "1,2,3,4"] if command == "golden" else [])
    measured = peak_rss(*argv)
    estimated = sum(memory.estimate(spec.model, tokens, build=command == "build").values())
    assert measured <= estimated <= 1.6 * measured, (measured >> 20, estimated >> 20)


def test_a_run_above_the_limit_is_refused_before_it_allocates(tmp_path):
    config = write_config(tmp_path, "big", model={"vocab": 1 << 20, "hidden": 1 << 14, "layers": 1024,
                                                  "intermediate_size": 1 << 15},
                          hardware={"parallelism": {"pe": 1, "simd": 1}})
    done = subprocess.run([sys.executable, "-m", "hlsgen.cli", "golden", str(config), "--ids", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: golden: this run needs about 13") and "GiB of memory, more than" in done.stderr


@pytest.mark.parametrize("text, size", [("512M", 512 << 20), ("4G", 4 << 30), ("1.5g", 3 << 29), ("1024", 1024),
                                        ("2GiB", 2 << 30)])
def test_sizes(text, size):
    assert memory.parse_size(text) == size
