"""hlsgen: MatMul-free (ternary) language models to restructured Vitis-HLS accelerator projects."""

from hlsgen.version import __version__  # noqa: F401
