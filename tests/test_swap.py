"""Builds never lose a project: concurrent `hlsgen build` processes into one output, and builds
killed with SIGKILL at many points (between the steps of the switch too), always leave the whole
old or the whole new project at the output path, checked by a checksum of the tree.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import write_config

ROOT = Path(__file__).resolve().parent.parent


def tree_digest(directory: Path) -> str:
    """sha256 over every relpath and file content of the tree at `directory` as it is at one
    instant: walked through a descriptor opened on it, so a switch during the walk cannot mix in
    files of another tree; None when the tree moved away before the walk ended (a tree being
    deleted after it was replaced is not the output any more)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        h = hashlib.sha256()
        entries = []
        for top, dirs, files, top_fd in os.fwalk(dir_fd=fd):
            dirs.sort()
            for name in files:
                with open(os.open(name, os.O_RDONLY, dir_fd=top_fd), "rb") as f:
                    entries.append((os.path.join(top, name), f.read()))
        for rel, data in sorted(entries):
            h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        if os.stat(directory).st_ino != os.fstat(fd).st_ino:
            return None
        return h.hexdigest()
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(out.name + ".hlsgen-*") if not p.name.endswith("-lock"))


def start_build(config: Path, out: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hlsgen.cli", "build", str(config), "-o", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def build(config: Path, out: Path, **env) -> subprocess.CompletedProcess:
    process = start_build(config, out, **env)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return subprocess.CompletedProcess(process.args, 0, stdout, stderr)


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    """Configs A and B that differ in their weights, and the checksums of their trees at `out`."""
    tmp = tmp_path_factory.mktemp("swap")
    a = write_config(tmp, "a", weights={"random": {"seed": 0}})
    b = write_config(tmp, "b", weights={"random": {"seed": 1}})
    out = tmp / "out"
    build(a, out)
    digest_a = tree_digest(out)
    build(b, out)
    digest_b = tree_digest(out)
    assert digest_a != digest_b
    build(a, out)
    assert tree_digest(out) == digest_a          # the checksum is a function of the config alone
    return a, b, out, {digest_a: "A", digest_b: "B"}


def state(out: Path, known: dict) -> str:
    if not out.exists():
        return "missing"
    digest = tree_digest(out)
    return known.get(digest, "a mix") if digest else "moved"


def test_concurrent_builds_into_one_output_each_leave_a_whole_project(two_projects):
    a, b, out, known = two_projects
    seen, stop = [], threading.Event()

    def watch():                       # the tree at `out`, sampled as often as it can be read
        while not stop.is_set():
            seen.append(state(out, known))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        processes = [start_build(config, out) for config in (a, b, a, b, b, a)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    finally:
        stop.set()
        watcher.join()
    assert [code for code, _ in results] == [0] * 6, [err for _, err in results]
    assert any("being written by another build (pid" in err for _, err in results)   # they did meet
    samples = [s for s in seen if s != "moved"]
    assert len(samples) > 10 and set(samples) <= {"A", "B"}, sorted(set(seen))
    assert state(out, known) in ("A", "B") and leftovers(out) == []


def wait_for_pause(process: subprocess.Popen, step: str) -> None:
    line = process.stderr.readline()
    while line and f"paused at {step}" not in line:
        line = process.stderr.readline()
    assert f"paused at {step}" in line, f"the build never reached {step}: {process.stderr.read()}"


@pytest.mark.parametrize("step, exchange, while_paused", [
    ("locked", True, "A"), ("staged", True, "A"), ("switched", True, "B"),
    # Without renameat2 the switch is two renames: between them no tree is at `out` (the
    # documented fallback), and the next build brings the parked old tree back.
    ("staged", False, "A"), ("parked", False, "missing"), ("switched", False, "B")])
def test_a_build_killed_between_the_steps_of_the_switch_loses_nothing(two_projects, step, exchange, while_paused):
    a, b, out, known = two_projects
    build(a, out)
    env = {"HLSGEN_TEST_PAUSE": step} | ({} if exchange else {"HLSGEN_NO_EXCHANGE": "1"})
    process = start_build(b, out, **env)
    wait_for_pause(process, step)
    assert state(out, known) == while_paused
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state(out, known) == while_paused
    if step != "locked":
        assert leftovers(out), "the kill left nothing for the next build to recover"
    after = build(a, out)
    assert state(out, known) == "A" and leftovers(out) == []
    if step != "locked":
        assert "left by an interrupted build" in after.stderr
    if while_paused == "missing":
        assert f"restored {out}" in after.stderr


def test_builds_killed_at_many_points_leave_the_old_or_the_new_project(two_projects):
    a, b, out, known = two_projects
    build(a, out)
    # A build here takes about a second after Python starts: the kills land before, during and
    # after staging and the switch.
    outcomes = []
    for i, delay in enumerate([0.2, 0.5, 0.8, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.3, 2.6]):
        process = start_build(b if i % 2 == 0 else a, out)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        outcomes.append(state(out, known))
    assert set(outcomes) <= {"A", "B"}, outcomes
    build(b, out)
    assert state(out, known) == "B" and leftovers(out) == []
