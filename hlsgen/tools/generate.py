"""Text generation with a byte-level model (vocab 256): through the golden model, or through the
generated accelerator compiled as a C-simulated device.

Both backends take the prompt as a new sequence (prefill), then one token per step, through the
same loop and the same sampler, so the csim backend's tokens equal the golden fixed model's
whenever its logits do (bit-exact csim).  The csim device takes the prompt in blocks of its batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hlsgen.model import golden
from hlsgen.tools.device import CsimDevice
from hlsgen.errors import HlsgenError
from hlsgen.model.spec import Spec

BYTE_VOCAB = 256
MIN_TEMPERATURE = 1e-6
TOKENIZER_FILE = "tokenizer.json"     # what an MMfreeLM checkpoint directory ships (a 32k BPE)


def encode(text: str, vocab: int) -> list[int]:
    """UTF-8 bytes as token ids; the model must be byte-level."""
    if vocab != BYTE_VOCAB:
        raise HlsgenError(f"model.vocab: {vocab} is not a byte-level vocabulary (allowed: 256; generate feeds "
                          f"UTF-8 bytes as tokens, or uses the {TOKENIZER_FILE} of the checkpoint directory)")
    # surrogateescape: bytes that are not UTF-8 (as a shell passes them) reach the model as they are.
    ids = list(text.encode("utf-8", "surrogateescape"))
    if not ids:
        raise HlsgenError("--prompt: empty (allowed: at least one character)")
    return ids


def decode(ids) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


class ByteTokenizer:
    """UTF-8 bytes as tokens (the default for a vocabulary of 256)."""
    name = "bytes"

    def __init__(self, vocab: int):
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        return encode(text, self.vocab)

    def decode(self, ids) -> str:
        return decode(ids)


class FileTokenizer:
    """A checkpoint's tokenizer.json through the `tokenizers` library (the `tokenizer` extra)."""

    def __init__(self, path: Path, vocab: int):
        try:
            from tokenizers import Tokenizer
        except ModuleNotFoundError:
            raise HlsgenError(f"{path}: reading a tokenizer needs the `tokenizers` package (allowed: "
                              f"`pip install 'hlsgen[tokenizer]'`)") from None
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:     # the library raises its own exception types
            raise HlsgenError(f"{path}: not a readable tokenizer ({exc})") from None
        size = self.tokenizer.get_vocab_size()
        if size > vocab:
            raise HlsgenError(f"{path}: {size} tokens, more than model.vocab {vocab} (allowed: the model's own "
                              f"tokenizer)")
        self.name = str(path)

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if not ids:
            raise HlsgenError("--prompt: encodes to no tokens (allowed: text the tokenizer covers)")
        return ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def tokenizer_for(spec: Spec):
    """The checkpoint directory's tokenizer.json when it has one, else UTF-8 bytes (vocab 256)."""
    if spec.weights.path is not None:
        directory = spec.weights.path if spec.weights.path.is_dir() else spec.weights.path.parent
        if (directory / TOKENIZER_FILE).is_file():
            return FileTokenizer(directory / TOKENIZER_FILE, spec.model.vocab)
    if spec.model.vocab != BYTE_VOCAB:
        raise HlsgenError(f"model.vocab: {spec.model.vocab} is not byte-level and the weights have no "
                          f"{TOKENIZER_FILE} beside them (allowed: vocab 256, or a checkpoint directory with its "
                          f"{TOKENIZER_FILE})")
    return ByteTokenizer(spec.model.vocab)


class Streamer:
    """Prints the continuation as it grows: the whole text is decoded again at each token (a
    tokenizer may merge pieces), and what is new is printed once it is stable (no half character)."""

    def __init__(self, tokenizer, prompt: list[int], out):
        self.tokenizer, self.ids, self.out = tokenizer, list(prompt), out
        self.printed = ""
        self._show(final=False)

    def __call__(self, token: int) -> None:
        self.ids.append(token)
        self._show(final=False)

    def finish(self) -> str:
        self._show(final=True)
        self.out.write("\n")
        self.out.flush()
        return self.printed

    def _show(self, final: bool) -> None:
        text = self.tokenizer.decode(self.ids)
        if not final:
            text = text.rstrip("\ufffd")      # a character whose bytes are still coming
        if text.startswith(self.printed):
            self.out.write(text[len(self.printed):])
            self.printed = text
        elif final:                            # the tokenizer rewrote earlier text: print it whole
            self.out.write("\n" + text)
            self.printed = text
        self.out.flush()


class Sampler:
    """Greedy (temperature 0: argmax, first index on ties) or softmax(logits / T) sampling from a
    seeded generator, so a run is reproducible."""

    def __init__(self, temperature: float = 0.0, seed: int = 0):
        # Below MIN_TEMPERATURE, logits / T overflows float64 (a denormal T gives inf - inf = NaN).
        if not (temperature == 0 or MIN_TEMPERATURE <= temperature < float("inf")):
            raise HlsgenError(f"--temperature: {temperature} is out of range (allowed: 0 for greedy, or a finite "
                              f"number >= {MIN_TEMPERATURE:g})")
        if not 0 <= seed < 1 << 63:
            raise HlsgenError(f"--seed: {seed} is out of range (allowed: 0 to 2**63 - 1)")
        self.temperature = temperature
        self.rng = np.random.default_rng(seed)

    def __call__(self, logits: np.ndarray) -> int:
        if self.temperature == 0:
            return int(np.argmax(logits))
        z = np.asarray(logits, np.float64) / self.temperature
        p = np.exp(z - z.max())
        return int(self.rng.choice(len(p), p=p / p.sum()))


class GoldenBackend:
    """The golden model, one token at a time, carrying the recurrent state."""

    def __init__(self, model: golden.Model):
        self.model, self.state = model, model.initial_state()

    def prefill(self, prompt: list[int]) -> np.ndarray:
        """A new sequence; returns the last prompt token's logits."""
        self.state = self.model.initial_state()
        for token in prompt:
            logits = self.step(token)
        return logits

    def step(self, token: int) -> np.ndarray:
        raw, self.state = self.model.forward([token], self.state)
        return self.model.to_float(raw)[0]


class CsimBackend:
    """The generated top function (C-simulated); its raw fixed-point logits are converted to float
    exactly as the golden fixed model converts its own."""

    def __init__(self, project, spec: Spec):
        self.device = CsimDevice(project)
        self.device.upload_project_buffers()        # off-chip weights only; nothing to do on chip
        self.to_float = golden.FixedArith(spec.model, spec.numerics).logits

    def prefill(self, prompt: list[int]) -> np.ndarray:
        """A new sequence in state slot 0: the prompt in blocks of the device's batch (each block one
        pass over the weights), the state reset before the first; returns the last token's logits."""
        batch = self.device.batch
        for i in range(0, len(prompt), batch):
            raw, _ = self.device.run(prompt[i:i + batch], batch_mode=False, reset_state=int(i == 0))
        return self.to_float(raw[-1])

    def step(self, token: int) -> np.ndarray:
        raw, _ = self.device.run([token])
        return self.to_float(raw[0])


def generate(backend, prompt: list[int], max_new_tokens: int, sampler: Sampler, on_token=None) -> list[int]:
    """Prefill the prompt as a new sequence, then sample and feed back one token at a time
    (on_token(token) as each comes: streaming)."""
    logits = backend.prefill(prompt)
    new = []
    while len(new) < max_new_tokens:
        new.append(sampler(logits))
        if on_token:
            on_token(new[-1])
        if len(new) < max_new_tokens:          # the last token's logits would go unused
            logits = backend.step(new[-1])
    return new
