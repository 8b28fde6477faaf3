"""Fixtures shared by the project-generation tests: configs written into tmp, the CLI run
in-process, and a private csim cache."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hlsgen.cli import main

# Optional system tools (not from PyPI): a test that needs one skips where it is missing, with a
# reason starting "missing tool:".  .ci/run installs them all (scripts/install-tools.sh) and fails
# when any test still skips with that reason, so CI runs every test.
INSTALL_TOOLS = "scripts/install-tools.sh"


def _missing_reason(tools) -> str | None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return f"missing tool: {', '.join(missing)} (install: {INSTALL_TOOLS})" if missing else None


def needs_tool(*tools: str):
    """A mark: skip the test where one of `tools` is not on PATH."""
    reason = _missing_reason(tools)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def require_tool(*tools: str) -> None:
    """In a fixture: skip every test that uses it where one of `tools` is not on PATH."""
    reason = _missing_reason(tools)
    if reason:
        pytest.skip(reason)


# The shape of examples/tiny.yaml, kept here so that edits to the example don't move the tests.
TINY = {
    "model": {"vocab": 256, "hidden": 64, "layers": 2, "intermediate_size": 128},
    "weights": {"random": {"seed": 0}},
    "hardware": {"board": "u280", "weights": "onchip", "parallelism": {"pe": 4, "simd": 8}},
    "project": {"name": "tiny_top"},
}


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in, nested mappings key by key; None removes a key."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def write_config(directory: Path, name: str, **sections) -> Path:
    """TINY with `sections` merged in, as `directory/name.yaml`; the project goes to `directory/name`."""
    config = merged(TINY, {"project": {"output": name}, **sections})
    path = Path(directory) / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def run_cli(*argv) -> CliRun:
    """`hlsgen ARGV` in-process; usable from fixtures of any scope (unlike capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def hlsgen_cache(tmp_path_factory):
    """A csim binary cache for this test session only: cold and warm runs don't depend on ~/.cache."""
    cache = tmp_path_factory.mktemp("hlsgen-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HLSGEN_CACHE", str(cache))
        yield cache


def plan_of(project: Path):
    """The plan a project was built from (its widths follow the weights)."""
    from hlsgen.hardware import planner
    from hlsgen.model import checkpoint
    from hlsgen.model import spec as spec_mod
    manifest = yaml.safe_load((project / "hlsgen_manifest.json").read_text())
    spec = spec_mod.load(manifest["source"])
    return planner.plan(spec, checkpoint.load(spec))


def record_edits(project: Path) -> None:
    """Make deliberate edits (a simulated hardware bug, a stand-in module) the build's own: the
    tools refuse a project whose files differ from the manifest's digests, as a broken project.
    Files the edit removed leave the manifest."""
    path = project / "hlsgen_manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {rel: hashlib.sha256((project / rel).read_bytes()).hexdigest() for rel in manifest["files"]
                         if (project / rel).is_file()}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
