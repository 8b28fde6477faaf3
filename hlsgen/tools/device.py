"""The generated accelerator as a C-simulated device: the top function compiled into a shared
library (host/csim_device.cpp) and driven through ctypes, one call of the top at a time: 1 to
`batch` tokens that share one pass over the weights.

This is what the host driver's `csim` backend and `hlsgen generate --backend csim` use: the same
packed buffers and the same call sequence as the board, computed by the HLS C++ itself.
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hlsgen.project import integrity
from hlsgen.tools.csim import compile_cached, project_ap_include
from hlsgen.errors import HlsgenError


class CsimDevice:
    def __init__(self, project: Path, private_copy: bool = False):
        """private_copy: load a copy of the compiled library, with static state of its own (after a
        call that never returned, whose thread still runs in the shared one)."""
        self.project = Path(project).resolve()
        # What the library is compiled from; the data the driver compares with is the driver's to check.
        manifest = integrity.check(self.project, under=("src/", "host/"))
        self.top = manifest["top"]
        sources = [self.project / "src" / f"{self.top}.cpp", self.project / "host" / "csim_device.cpp"]
        if not sources[1].is_file():
            raise HlsgenError(f"{self.project}: no host/csim_device.cpp (rebuild the project with this hlsgen)")
        hashed = {p.relative_to(self.project).as_posix(): p.read_bytes()
                  for p in sorted((self.project / "src").rglob("*")) + sources if p.is_file()}
        library, _, _ = compile_cached(sources, [self.project / "src"], hashed,
                                       what=f"the csim device library of {self.project}",
                                       extra_flags=("-shared", "-fPIC"), ap_types=project_ap_include(self.project))
        if private_copy:
            self._copy = tempfile.TemporaryDirectory(prefix="hlsgen-csim-")
            library = Path(shutil.copy(library, Path(self._copy.name) / library.name))
        self.lib = ctypes.CDLL(str(library))
        ints = ctypes.POINTER(ctypes.c_int)
        self.lib.hlsgen_run.restype = ctypes.c_int
        self.lib.hlsgen_run.argtypes = [ints, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ints, ints]
        self.lib.hlsgen_upload.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        self.vocab = self.lib.hlsgen_vocab()
        self.batch = self.lib.hlsgen_batch()      # tokens per call, and state slots

    def upload(self, port: int, buffer: np.ndarray) -> None:
        """Copy one device buffer: port 0 the embedding (int32), then each weight port (uint64 x 8 per word)."""
        data = np.ascontiguousarray(buffer)
        count = data.size if port == 0 else data.size // 8
        if self.lib.hlsgen_upload(port, data.ctypes.data, count) != 0:
            raise HlsgenError(f"csim device: port {port} takes no upload (on-chip weights, or no such port)")

    def run(self, tokens, batch_mode: bool = False, reset_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """One call of the top; returns (raw fixed-point logits int32 [n, V], greedy next tokens int32 [n]).
        batch_mode False: the n tokens continue the sequence in state slot 0 (a prompt block);
        True: token t is the next token of the sequence in slot t.  Bit s of reset_state zeroes
        slot s before the call."""
        ids = np.asarray(tokens).ravel()
        if not 1 <= ids.size <= self.batch:
            raise HlsgenError(f"csim device: {ids.size} tokens in one call (allowed: 1 to {self.batch})")
        if not np.issubdtype(ids.dtype, np.integer):
            raise HlsgenError(f"csim device: tokens of type {ids.dtype} (allowed: integer token ids)")
        bad = ids[(ids < 0) | (ids >= self.vocab)]
        if bad.size:
            raise HlsgenError(f"csim device: token {bad[0]} is out of range (allowed: 0 to {self.vocab - 1})")
        if not 0 <= reset_state < 1 << self.batch:
            raise HlsgenError(f"csim device: reset_state {reset_state:#x} is out of range "
                              f"(allowed: a bit per state slot, 0 to {(1 << self.batch) - 1:#x})")
        ids = ids.astype(np.int32)
        logits = np.zeros((ids.size, self.vocab), np.int32)
        next_tokens = np.zeros(ids.size, np.int32)
        ints = ctypes.POINTER(ctypes.c_int)
        if self.lib.hlsgen_run(ids.ctypes.data_as(ints), ids.size, int(bool(batch_mode)), reset_state,
                               logits.ctypes.data_as(ints), next_tokens.ctypes.data_as(ints)) != 0:
            raise HlsgenError(f"csim device: the top refused a call of {ids.size} tokens (allowed: 1 to {self.batch})")
        return logits, next_tokens

    def step(self, token: int, reset: bool = False) -> tuple[np.ndarray, int]:
        """One token of the sequence in slot 0; returns (raw logits int32 [V], the greedy next token)."""
        logits, next_tokens = self.run([token], False, int(reset))
        return logits[0], int(next_tokens[0])

    def upload_project_buffers(self) -> None:
        """Upload the packed buffers the build wrote (off-chip designs only)."""
        ports = integrity.check(self.project, under=("tb/data/",)).get("memory_ports", [])
        for index, port in enumerate(ports):
            dtype = "<i4" if index == 0 else "<u8"
            self.upload(index, np.fromfile(self.project / "tb" / "data" / f"{port}.bin", dtype))
