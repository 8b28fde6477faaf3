"""Putting a new project tree in place of the old one so that nothing is ever lost.

- One writer per output: an exclusive flock on `<out>.hlsgen-lock` (beside the output; the holder
  writes its pid into it).  A second build into the same output *waits* for the first, saying once
  which pid it waits for, then writes its own tree: concurrent builds serialise, each ends with a
  whole project, the last one wins.  The kernel drops the lock when a holder dies, even by kill -9.
- Unique staging names: the new tree is built in `<out>.hlsgen-new-<pid>-<random>`.
- An atomic switch: renameat2(RENAME_EXCHANGE) (Linux >= 3.15, glibc >= 2.28) swaps the staged
  tree and the output in one step, so at every instant `<out>` is the whole old tree or the
  whole new one; the old tree, now under the staging name, is then removed.  A real directory at
  `<out>` is kept (no symlink), so every path users and tools already hold stays valid.
  Fallback where the call is missing or the filesystem refuses it (macOS, some network
  filesystems): two renames, out -> `<out>.hlsgen-old-...`, then stage -> out.  A kill between
  them leaves no `<out>` for a moment; the next build restores the parked old tree first.
- Leftovers of killed builds (`<out>.hlsgen-new*`, `<out>.hlsgen-old*`) are only ever touched
  under the lock, where no live build can own them: the next build restores or removes them and
  says so on stderr.

HLSGEN_TEST_PAUSE=<step> stops a build at a named step (locked, staged, parked, switched) until it
is killed: the kill tests use it to interrupt the switch between its steps.  HLSGEN_TEST_FAULT=enospc
fails the first staged write with ENOSPC, for a full disk where no small filesystem can be mounted.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_SUFFIX = ".hlsgen-lock"
NEW, OLD = ".hlsgen-new", ".hlsgen-old"
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def pause_point(step: str) -> None:
    """A test hook: with HLSGEN_TEST_PAUSE=step, announce the step and wait to be killed."""
    if os.environ.get("HLSGEN_TEST_PAUSE") == step:
        print(f"hlsgen: paused at {step}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def fault_point(step: str) -> None:
    """A test hook where a full disk cannot be made: HLSGEN_TEST_FAULT=enospc fails the write."""
    if os.environ.get("HLSGEN_TEST_FAULT") == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), step)


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + LOCK_SUFFIX)


@contextmanager
def output_lock(out: Path):
    """Hold the exclusive lock of `out`, waiting (with one message) while another build has it."""
    path = lock_path(out)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            print(f"hlsgen: {out} is being written by another build (pid {holder}); waiting for it",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        pause_point("locked")
        yield
    finally:
        os.close(fd)          # releases the flock


def staging_name(out: Path, kind: str) -> Path:
    return out.with_name(f"{out.name}{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def recover(out: Path) -> None:
    """Under the lock: bring back a tree parked by an interrupted fallback switch, remove the rest."""
    parked = sorted(out.parent.glob(out.name + OLD + "*"), key=lambda p: p.stat().st_mtime)
    if parked and not out.exists():
        parked.pop().rename(out)
        print(f"hlsgen: restored {out} from an interrupted build", file=sys.stderr)
    for leftover in parked + sorted(out.parent.glob(out.name + NEW + "*")):
        shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
        print(f"hlsgen: removed {leftover.name}, left by an interrupted build", file=sys.stderr)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where renameat2(RENAME_EXCHANGE) is not available."""
    if os.environ.get("HLSGEN_NO_EXCHANGE"):          # to test the fallback
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def switch(stage: Path, out: Path) -> None:
    """Put the tree at `stage` in place of `out` (which may not exist yet)."""
    if not out.exists():
        stage.rename(out)
        pause_point("switched")
        return
    if _exchange(stage, out):
        pause_point("switched")
        shutil.rmtree(stage)                           # the old tree now
        return
    parked = staging_name(out, OLD)
    out.rename(parked)
    pause_point("parked")
    stage.rename(out)
    pause_point("switched")
    shutil.rmtree(parked)
