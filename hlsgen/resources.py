"""Where the data folders that hlsgen reads live: templates, kernel headers, boards, sim harnesses.

They sit at the top of the repository (the design's layout).  The wheel carries them inside the
package as hlsgen/_data/<folder> (pyproject.toml maps them there); a source checkout, editable
install or PYTHONPATH alike, has them beside the package.  Every module asks here, at the time it
needs a folder, so that a broken install is one clear error rather than an empty board list.
"""
from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from hlsgen.errors import HlsgenError

FOLDERS = {"TEMPLATES": "templates", "KERNELS": "kernels_cpp", "BOARDS_DIR": "boards", "SIM_DIR": "sim"}


def _roots() -> list[Path]:
    """Where a data folder may be: inside the installed package, then beside it in a checkout."""
    package = Path(str(resources.files("hlsgen")))
    return [package / "_data", package.parent]


def folder(name: str) -> Path:
    """The data folder `name` (one of FOLDERS' values); an HlsgenError when the install lacks it."""
    candidates = [root / name for root in _roots()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise HlsgenError(f"hlsgen's data folder '{name}' is missing: looked in {', '.join(map(str, candidates))} "
                      f"(allowed: an hlsgen wheel, which carries it as hlsgen/_data/{name}, or a source checkout; "
                      f"reinstall with `pip install hlsgen` or `pip install -e .` from the repository)")


def templates() -> Path:
    return folder("templates")


def kernels() -> Path:
    return folder("kernels_cpp")


def boards() -> Path:
    return folder("boards")


def sim() -> Path:
    return folder("sim")


def __getattr__(name: str) -> Path:
    # The old constants (TEMPLATES, KERNELS, BOARDS_DIR, SIM_DIR), resolved when first read.
    if name in FOLDERS:
        return folder(FOLDERS[name])
    raise AttributeError(f"module 'hlsgen.resources' has no attribute {name!r}")


# The Xilinx arbitrary-precision headers (Apache-2.0) as the hls4ml package ships them: ap_*.h and
# etc/ap_private.h.  Its hls_stream.h carries a proprietary notice and its hls_math.h is a stub,
# so neither is in this list (see project/render.py for the stream header).
AP_TYPES_PATTERNS = ("ap_*.h", "etc/*.h")


def ap_types() -> Path:
    """hls4ml's copy of the ap_types headers (hls4ml/templates/vivado/ap_types), found through the
    import system without importing hls4ml (which would load its converters: half a second)."""
    found = importlib.util.find_spec("hls4ml")
    if found is None or not found.submodule_search_locations:
        raise HlsgenError("the ap_types headers were not found: the hls4ml package is not installed (allowed: "
                          "`pip install 'hls4ml>=1.3,<1.4'`, a dependency of hlsgen that ships them)")
    path = Path(found.submodule_search_locations[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise HlsgenError(f"the ap_types headers were not found: {path} has no ap_int.h (allowed: hls4ml 1.3, "
                          f"which ships them in templates/vivado/ap_types)")
    return path
