"""Long steps talk (a line per cosim kind as it starts and ends, csim's compile estimate and cache
hits, explore's progress, generate streaming its text, --version), and generate with a
checkpoint's own tokenizer.json through the `tokenizers` library."""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from hlsgen import progress
from hlsgen.model import golden, spec as spec_mod
from hlsgen.model import checkpoint
from hlsgen.tools import generate
from hlsgen.version import __version__

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("hlsgen_cache")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("talk")
    assert run_cli("build", write_config(root, "tiny")).code == 0
    return root / "tiny"


def test_cosim_prints_a_line_per_kind_as_it_starts_and_ends(project):
    run = run_cli("cosim", project, "--kind", "i", "--kind", "o", "--max-vectors", "2")
    assert run.code == 0, run.err
    lines = [line for line in run.err.splitlines() if line.startswith("cosim ")]
    assert [re.sub(r"done in [0-9.]+ s", "done in T s", line) for line in lines] == [
        "cosim 1/2: i (tiny_top_mvu_i, verilator build and cocotb run): started",
        "cosim 1/2: i (tiny_top_mvu_i, verilator build and cocotb run): done in T s",
        "cosim 2/2: o (tiny_top_mvu_o, verilator build and cocotb run): started",
        "cosim 2/2: o (tiny_top_mvu_o, verilator build and cocotb run): done in T s"], run.err


def test_csim_says_how_long_a_compile_takes_and_notes_a_cache_hit(project, tmp_path, monkeypatch):
    monkeypatch.setenv("HLSGEN_CACHE", str(tmp_path / "cold-cache"))     # cold, whatever ran before
    cold = run_cli("csim", project)
    assert cold.code == 0
    assert re.search(r"^csim: compiling the generated project .* with g\+\+ \(about \d+ s\)$", cold.err, re.M), cold.err
    warm = run_cli("csim", project)
    assert warm.code == 0 and "cache hit, no compile" in warm.err and "compiling" not in warm.err


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_is_plain_lines_off_a_terminal_and_one_rewritten_line_on_one():
    for tty, expected in ((False, "x: 1/3 after 0 s\nx: 2/3 after 0 s\nx: 3/3 after 0 s\n"),
                          (True, "\rx: 1/3 after 0 s\rx: 2/3 after 0 s\rx: 3/3 after 0 s\n")):
        stream = Stream(tty)
        tick = progress.Ticker("x", after=0, every=0, stream=stream)
        for done in (1, 2, 3):
            tick(done, 3)
        assert stream.getvalue() == expected
    quiet = Stream(False)
    tick = progress.Ticker("x", 3, after=60, stream=quiet)       # a quick loop says nothing
    tick(3)
    assert quiet.getvalue() == ""


class Writes(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


def test_generate_streams_the_text_as_tokens_come():
    out = Writes()
    tokenizer = generate.ByteTokenizer(256)
    stream = generate.Streamer(tokenizer, list(b"ab"), out)
    for token in "é!".encode():                   # two bytes, then one
        stream(token)
    assert out.writes[:3] == ["ab", "", "é"]      # nothing of a half character
    stream(0xFF)                                   # an invalid byte, shown as U+FFFD at the end
    assert stream.finish() == "abé!\ufffd" and out.getvalue() == "abé!\ufffd\n"


def test_version_line(capsys):
    from hlsgen.cli import main
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"hlsgen {__version__}\n"


# ----------------------------------------------------------------------------- tokenizer.json
@pytest.fixture(scope="module")
def checkpoint_with_tokenizer(tmp_path_factory) -> Path:
    """examples/tiny_lm (vocab 256) as an HF directory with a 200-token BPE tokenizer.json."""
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizer extra: pip install 'hlsgen[tokenizer]'")
    directory = tmp_path_factory.mktemp("ckpt") / "tiny_lm"
    shutil.copytree(REPO / "examples" / "tiny_lm", directory)
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"])
    text = [line for path in sorted((REPO / "hlsgen").rglob("*.py")) for line in path.read_text().splitlines()]
    tokenizer.train_from_iterator(text, trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def test_generate_encodes_and_decodes_with_the_checkpoints_tokenizer(checkpoint_with_tokenizer):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(checkpoint_with_tokenizer / "tokenizer.json"))
    prompt = "def reader(self):"
    ids = tok.encode(prompt, add_special_tokens=False).ids
    assert len(ids) < len(prompt.encode()) and max(ids) < 200      # merged pieces, not bytes
    spec = spec_mod.load(checkpoint_with_tokenizer)
    model = golden.Model(spec.model, checkpoint.load(spec), "fixed", spec.numerics)
    new = generate.generate(generate.GoldenBackend(model), ids, 6, generate.Sampler())
    run = run_cli("generate", checkpoint_with_tokenizer, "--prompt", prompt, "--max-new-tokens", 6,
                  "--numerics", "fixed")
    assert run.code == 0, run.err
    assert run.out == tok.decode(ids + new, skip_special_tokens=False) + "\n"
    assert f"tokenizer: {checkpoint_with_tokenizer / 'tokenizer.json'}" in run.err


def test_without_the_library_the_error_names_the_extra(checkpoint_with_tokenizer, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    run = run_cli("generate", checkpoint_with_tokenizer, "--prompt", "def ")
    assert run.code == 2
    assert run.err == (f"error: {checkpoint_with_tokenizer / 'tokenizer.json'}: reading a tokenizer needs the "
                       f"`tokenizers` package (allowed: `pip install 'hlsgen[tokenizer]'`)\n")


def test_byte_level_stays_the_default_for_vocab_256():
    spec = spec_mod.load(REPO / "examples" / "tiny_lm.yaml")
    assert isinstance(generate.tokenizer_for(spec), generate.ByteTokenizer)
