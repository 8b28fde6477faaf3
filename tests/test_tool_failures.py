"""Tools that fail say why, and cached tool output that is damaged is rebuilt.

- g++ and Yosys failures: one `error:` line, then the tool's own last 20 meaningful lines,
  indented (not flattened into one line, not cut to nothing);
- a corrupt cached csim binary is detected by its digest and rebuilt, and the run passes;
- a YoWASP first run is announced once and concurrent first runs wait for it, so none reads a
  half-written cache (a stand-in tool that fails on a half-written cache shows it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import needs_tool, write_config

ROOT = Path(__file__).resolve().parent.parent


def hlsgen(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hlsgen.cli", *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=900)


def stand_in(path: Path, lines: int, code: int = 1) -> Path:
    """An executable that prints `lines` numbered diagnostic lines (and blank ones) and fails."""
    path.write_text("#!/bin/sh\n" + "".join(f"echo 'diagnostic {i}: something is wrong' >&2\necho >&2\n"
                                          for i in range(lines)) + f"exit {code}\n")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tools")
    done = hlsgen("build", write_config(tmp, "p"))
    assert done.returncode == 0, done.stderr
    return tmp / "p"


def error_lines(stderr: str) -> list[str]:
    """stderr from the `error:` line on (progress lines of a long step may come before it)."""
    lines = stderr.rstrip("\n").split("\n")
    return lines[next((i for i, line in enumerate(lines) if line.startswith("error: ")), 0):]


def check_tool_lines(stderr: str, first: str, last_line: int):
    lines = error_lines(stderr)
    assert lines[0].startswith("error: ") and first in lines[0], stderr
    assert lines[1:] == [f"    diagnostic {i}: something is wrong" for i in range(last_line - 19, last_line + 1)]


def test_a_compiler_error_keeps_its_last_20_lines(project, tmp_path):
    done = hlsgen("csim", project, env={"CXX": str(stand_in(tmp_path / "g++", 30)), "HLSGEN_CACHE": str(tmp_path)})
    assert done.returncode == 2
    check_tool_lines(done.stderr, "csim: g++ failed (exit 1) on the generated project", 29)


def test_a_yosys_error_keeps_its_last_lines(project, tmp_path):
    done = hlsgen("synth", "--open", project, "--kind", "i", env={"HLSGEN_YOSYS": str(stand_in(tmp_path / "yosys", 25))})
    assert done.returncode == 2
    check_tool_lines(done.stderr, "synth --open: yosys on", 24)


def test_a_tool_that_prints_nothing_says_so(project, tmp_path):
    done = hlsgen("synth", "--open", project, "--kind", "i", env={"HLSGEN_YOSYS": str(stand_in(tmp_path / "yosys", 0))})
    assert done.returncode == 2 and error_lines(done.stderr)[1:] == ["    (the tool printed nothing)"]


@needs_tool("g++")
def test_a_corrupt_cached_binary_is_rebuilt(project, tmp_path):
    # A cache of its own: corrupting the session's would truncate, in place, device libraries
    # that this pytest process has loaded (a SIGBUS when it next touches them).
    cache = tmp_path / "cache"
    env = {"HLSGEN_CACHE": str(cache)}
    first = hlsgen("csim", project, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    binaries = list(cache.rglob("csim.exe"))
    assert binaries
    for binary in binaries:
        binary.write_bytes(b"\x7fELF this is not a program")
    again = hlsgen("csim", project, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is corrupt (its digest does not match); rebuilding it" in again.stderr
    assert "PASS: bit-exact" in again.stdout and "compiled in" in again.stdout


# The stand-in for a YoWASP tool: the first run writes the "native code" cache slowly (as a real
# compile does); a run that finds a half-written cache fails, as YoWASP did once.
FAKE_TOOL = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    cache = Path(sys.argv[1])
    if cache.exists():
        if cache.read_text() != "native code, whole":
            sys.exit("half-written cache")
    else:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("w") as f:
            f.write("native code,")
            f.flush()
            time.sleep(2)
            f.write(" whole")
    print("ok")
""")

GUARDED_RUN = textwrap.dedent("""\
    import subprocess, sys
    from pathlib import Path
    from hlsgen.tools import external
    tool, cache = sys.argv[1], Path(sys.argv[2])
    with external.first_run_guard("yowasp-fake", cache=cache):
        sys.exit(subprocess.run([sys.executable, tool, str(cache)]).returncode)
""")


def test_concurrent_yowasp_first_runs_wait_for_the_compile(tmp_path):
    tool = tmp_path / "fake_tool.py"
    tool.write_text(FAKE_TOOL)
    cache = tmp_path / "YoWASP" / "yowasp_fake" / "fake.wasm" / "digest"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HLSGEN_CACHE": str(tmp_path / "hlsgen")}
    runs = []
    for i in range(4):
        runs.append(subprocess.Popen([sys.executable, "-c", GUARDED_RUN, str(tool), str(cache)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        if i == 0:
            while not cache.exists():          # the others start while the first is compiling
                pass
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    assert [code for code, _ in results] == [0] * 4, results
    announced = [err for _, err in results if "compiling fake to native code" in err]
    assert len(announced) == 1 and "once (YoWASP's first run" in announced[0]
