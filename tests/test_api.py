"""The Python API (hlsgen/api.py): the README's example as it stands, and predict against the
golden fixed model bit for bit, in blocks of a batched design's calls."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

import hlsgen
from hlsgen.errors import HlsgenError

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("hlsgen_cache")


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no API example"
    return match.group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert code.count('"out/tiny_lm_api"') == 1
    monkeypatch.chdir(REPO)                        # the example's paths are the repository's
    exec(compile(code.replace('"out/tiny_lm_api"', repr(str(tmp_path / "api"))), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "csim passed: True" in out and "next byte: b'" in out and "chosen (*)" in out
    assert (tmp_path / "api" / "report" / "report.md").is_file()
    assert (tmp_path / "api" / "hlsgen_config.yaml").is_file()


def test_predict_equals_the_golden_fixed_model_in_blocks_of_the_batch(tmp_path):
    config = {**TINY, "hardware": {**TINY["hardware"], "batch": 4}}
    project = hlsgen.convert(config, output_dir=tmp_path / "b4", **{"hardware.parallelism.simd": 4})
    assert project.spec.hardware.parallelism.simd == 4 and project.spec.hardware.batch == 4
    ids = [3, 1, 4, 1, 5, 9, 2]                                 # blocks of 4 and 3
    logits = project.predict(ids)
    golden = hlsgen.golden(config, ids, numerics="fixed")
    assert logits.shape == (7, 256) and logits.dtype == golden.dtype
    assert np.array_equal(logits, golden)
    assert not np.array_equal(logits, hlsgen.golden(config, ids, numerics="float"))
    assert np.array_equal(project.predict(ids[:2]), golden[:2])   # a new sequence each call


def test_bad_input_to_the_api_is_one_clear_error(tmp_path):
    with pytest.raises(HlsgenError, match=r"^hardware.parallelism.pee: unknown key"):
        hlsgen.convert(TINY, **{"hardware.parallelism.pee": 8})
    with pytest.raises(HlsgenError, match=r"^ids: 256 is out of range"):
        hlsgen.golden(TINY, [1, 256])
    with pytest.raises(HlsgenError, match=r"^numerics: 'double'"):
        hlsgen.golden(TINY, [1], numerics="double")


def test_import_hlsgen_loads_the_api_only_when_used():
    code = ("import sys, hlsgen; assert 'hlsgen.api' not in sys.modules and 'numpy' not in sys.modules; "
            "assert {'convert', 'golden', 'explore', 'HLSProject'} <= set(dir(hlsgen)); "
            "hlsgen.convert; assert 'hlsgen.api' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
