"""hlsgen: MatMul-free (ternary) language models to restructured Vitis-HLS accelerator projects.

The Python API (hlsgen/api.py): convert, golden, explore, load_config and HLSProject.
"""

import importlib

from hlsgen.version import __version__  # noqa: F401

API = ("convert", "golden", "explore", "load_config", "HLSProject", "ExploreTable")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    # The API is imported when first used, so that `import hlsgen.errors` (the generated driver,
    # the cocotb bench) does not load numpy, jinja2 and every stage.  import_module, not a
    # `from` import: the package stays below its stages in tests/test_layout.py's graph.
    if name in API:
        return getattr(importlib.import_module("hlsgen.api"), name)
    raise AttributeError(f"module 'hlsgen' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(API))
