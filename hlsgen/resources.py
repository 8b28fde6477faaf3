"""Where the data folders that hlsgen reads live: templates, kernel headers, boards, sim harnesses.

They sit at the top of the repository (the design's layout); every module asks here, so that
how they are found (checkout or installed package) is decided in one place.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "templates"
KERNELS = REPO_ROOT / "kernels_cpp"
BOARDS_DIR = REPO_ROOT / "boards"
SIM_DIR = REPO_ROOT / "sim"
