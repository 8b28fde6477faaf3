"""Reading a generated project back: its manifest, the JSON files inside it, and a check that the
files the manifest lists are all there with the content the build wrote.

Every command that works on a built project (csim, cosim, synth, report, bitstream, flash) calls
`check()` first, so that a deleted, truncated or edited file is reported as a broken project
(exit 2, naming the file) instead of surfacing later as a bit mismatch or a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hlsgen.errors import HlsgenError

MANIFEST = "hlsgen_manifest.json"
REBUILD = "rebuild with `hlsgen build`"


def read_json(path: Path, fix: str = REBUILD) -> dict:
    """A JSON object from `path`; any failure names the file and how to fix it."""
    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise HlsgenError(f"{path}: missing ({fix})") from None
    except OSError as exc:
        raise HlsgenError(f"{path}: cannot be read ({exc.strerror or exc}; {fix})") from None
    except (ValueError, RecursionError) as exc:       # JSONDecodeError, UnicodeDecodeError, too deep
        raise HlsgenError(f"{path}: corrupt, not valid JSON ({str(exc)[:120] or type(exc).__name__}; {fix})") from None
    if not isinstance(data, dict):
        raise HlsgenError(f"{path}: corrupt, the top level is {type(data).__name__}, not an object ({fix})")
    return data


def load_manifest(project: Path) -> dict:
    """The manifest of a generated project, with the fields every reader relies on."""
    project = Path(project)
    path = project / MANIFEST
    if not path.is_file():
        raise HlsgenError(f"{project}: not an hlsgen project (no {MANIFEST}; run `hlsgen build` first)")
    manifest = read_json(path)
    # source: the config file's path, or null for a config given as a dict (the Python API).
    for key, kind in (("top", str), ("files", dict), ("source", (str, type(None))), ("spec_digest", str)):
        if key not in manifest or not isinstance(manifest[key], kind):
            raise HlsgenError(f"{path}: corrupt, no '{key}' {getattr(kind, '__name__', 'str or null')} ({REBUILD})")
    return manifest


def check(project: Path, under: tuple[str, ...] | None = None) -> dict:
    """Every file the manifest lists (or those under the folders `under`) exists with the digest
    the build recorded; returns the manifest."""
    project = Path(project)
    manifest = load_manifest(project)
    for rel, digest in manifest["files"].items():
        path = project / rel
        if under is not None and not rel.startswith(under):
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise HlsgenError(f"broken project: {path} is missing ({REBUILD})") from None
        except OSError as exc:
            raise HlsgenError(f"broken project: {path} cannot be read ({exc.strerror}; {REBUILD})") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise HlsgenError(f"broken project: {path} was changed or truncated since the build "
                              f"({len(data)} bytes, not the content the build wrote; {REBUILD})")
    return manifest
