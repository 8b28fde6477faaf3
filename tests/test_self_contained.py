"""A generated project stands on its own: it carries the ap_types headers (copied from the
installed hls4ml package), its Makefile's `make csim` runs with g++ and make alone (no Python on
PATH), and a missing data folder or header package is one clear error."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_cli, write_config

from hlsgen import resources


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("selfcontained")
    assert run_cli("build", write_config(root, "tiny")).code == 0
    return root / "tiny"


def test_the_project_carries_the_ap_types_headers(project):
    source = resources.ap_types()
    for rel in ("ap_int.h", "ap_fixed.h", "ap_common.h", "etc/ap_private.h"):
        assert (project / "src" / "ap_types" / rel).read_bytes() == (source / rel).read_bytes()
    assert not (project / "src" / "ap_types" / "hls_math.h").exists()
    assert "python" not in (project / "Makefile").read_text()


def test_make_csim_needs_no_python(project, tmp_path):
    """PATH holds make, g++ and the binutils g++ calls, and nothing else: no python3 to ask for headers."""
    require_tool("make", "g++", "as", "ld")        # a skip CI counts as a failure ("missing tool:")
    tools = {name: shutil.which(name) for name in ("make", "g++", "as", "ld")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, path in tools.items():
        (bin_dir / name).symlink_to(path)
    copy = tmp_path / "moved"                      # and from a copy of the project, elsewhere
    shutil.copytree(project, copy, symlinks=True)
    done = subprocess.run(["make", "csim"], cwd=copy, env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
                          executable=tools["make"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "checked 12 tokens x 256 logits: 0 mismatches" in done.stdout and "PASS" in done.stdout


def test_no_hls4ml_is_one_clear_error(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hls4ml" else real(name, *a))
    run = run_cli("build", write_config(tmp_path, "tiny"))
    assert run.code == 2
    assert run.err.startswith("error: the ap_types headers were not found: the hls4ml package is not installed")
    assert "pip install 'hls4ml" in run.err and not (tmp_path / "tiny").exists()


def test_a_missing_data_folder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "_roots", lambda: [tmp_path / "_data", tmp_path])
    run = run_cli("validate", write_config(tmp_path, "tiny"))
    assert run.code == 2
    assert run.err.startswith("error: hlsgen's data folder 'boards' is missing: looked in ")
    assert "hlsgen/_data/boards" in run.err and len(run.err.splitlines()) == 1
