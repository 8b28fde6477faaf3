"""The generated accelerator as a C-simulated device: the top function compiled into a shared
library (host/csim_device.cpp) and driven through ctypes, one token per call.

This is what the host driver's `csim` backend and `hlsgen generate --backend csim` use: the same
packed buffers and the same call sequence as the board, computed by the HLS C++ itself.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

from .csim import _manifest, compile_cached
from .errors import HlsgenError


class CsimDevice:
    def __init__(self, project: Path):
        self.project = Path(project).resolve()
        manifest = _manifest(self.project)
        self.top = manifest["top"]
        sources = [self.project / "src" / f"{self.top}.cpp", self.project / "host" / "csim_device.cpp"]
        if not sources[1].is_file():
            raise HlsgenError(f"{self.project}: no host/csim_device.cpp (rebuild the project with this hlsgen)")
        hashed = {p.relative_to(self.project).as_posix(): p.read_bytes()
                  for p in sorted((self.project / "src").rglob("*")) + sources if p.is_file()}
        library, _, _ = compile_cached(sources, [self.project / "src"], hashed,
                                       what=f"the csim device library of {self.project}",
                                       extra_flags=("-shared", "-fPIC"))
        self.lib = ctypes.CDLL(str(library))
        self.lib.hlsgen_step.restype = ctypes.c_int
        self.lib.hlsgen_step.argtypes = [ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        self.lib.hlsgen_upload.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        self.vocab = self.lib.hlsgen_vocab()
        self._logits = np.zeros(self.vocab, np.int32)

    def upload(self, port: int, buffer: np.ndarray) -> None:
        """Copy one device buffer: port 0 the embedding (int32), then each weight port (uint64 x 8 per word)."""
        data = np.ascontiguousarray(buffer)
        count = data.size if port == 0 else data.size // 8
        if self.lib.hlsgen_upload(port, data.ctypes.data, count) != 0:
            raise HlsgenError(f"csim device: port {port} takes no upload (on-chip weights, or no such port)")

    def step(self, token: int, reset: bool = False) -> tuple[np.ndarray, int]:
        """One token; returns (raw fixed-point logits int32 [V], the greedy next token)."""
        if not 0 <= token < self.vocab:
            raise HlsgenError(f"csim device: token {token} is out of range (allowed: 0 to {self.vocab - 1})")
        ptr = self._logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
        next_token = self.lib.hlsgen_step(token, int(reset), ptr)
        return self._logits.copy(), int(next_token)

    def upload_project_buffers(self) -> None:
        """Upload the packed buffers the build wrote (off-chip designs only)."""
        ports = json.loads((self.project / "hlsgen_manifest.json").read_text()).get("memory_ports", [])
        for index, port in enumerate(ports):
            dtype = "<i4" if index == 0 else "<u8"
            self.upload(index, np.fromfile(self.project / "tb" / "data" / f"{port}.bin", dtype))
