"""hlsgen: MatMul-free (ternary) language models to restructured Vitis-HLS accelerator projects."""

__version__ = "0.1.0"
