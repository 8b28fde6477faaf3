"""Build-time fit checks: on-chip memory, memory channels and logic, for three model sizes on
several boards (planned from the spec alone: no weights are loaded), and how the m_axi ports are
spread over the channels."""

from __future__ import annotations

import re

import pytest

from conftest import write_config
from hlsgen.hardware import estimate, planner
from hlsgen.model import spec as spec_mod
from hlsgen.hardware.boards import Memory
from hlsgen.errors import HlsgenError
from hlsgen.project.vendor import bundle_ports

WIDE = {"pe": 8, "simd": 32, "lm_head_pe": 8, "lm_head_simd": 32}
MODELS = {
    "tiny": ({"vocab": 256, "hidden": 64, "layers": 2, "intermediate_size": 128}, {"pe": 4, "simd": 8}),
    "370M": ({"vocab": 32000, "hidden": 1024, "layers": 24, "intermediate_size": 2816}, WIDE),
    "2.7B": ({"vocab": 32000, "hidden": 2560, "layers": 32, "intermediate_size": 6912}, WIDE),
}
# Foldings wide enough to overflow the smaller boards' logic (the kinds of a folding share one engine).
TOO_WIDE = {("tiny", "pynq_z2"): {"pe": 16, "simd": 16},
            ("370M", "kv260"): {"pe": 64, "simd": 16, "lm_head_pe": 64, "lm_head_simd": 16},
            ("2.7B", "kv260"): {"pe": 64, "simd": 16, "lm_head_pe": 64, "lm_head_simd": 16}}
ONCHIP_FULL = "on chip ("                 # the on-chip memory refusal lists its tables
LOGIC = "hardware.parallelism: the design needs an estimated"

# (model, board, weights) -> None (fits) or a piece of the refusal.
DECISIONS = {
    ("tiny", "u280", "onchip"): None,
    ("tiny", "u250", "onchip"): None,
    ("tiny", "kv260", "onchip"): None,
    ("tiny", "pynq_z2", "onchip"): LOGIC,
    ("370M", "u280", "onchip"): "allowed: weights: ddr | hbm",
    ("370M", "u280", "hbm"): None,
    ("370M", "u250", "ddr"): None,
    ("370M", "kv260", "ddr"): LOGIC,
    ("370M", "pynq_z2", "ddr"): "pynq_z2 has 0.65 MB of BRAM+URAM (allowed: a smaller model or a larger board)",
    ("2.7B", "u280", "hbm"): None,
    ("2.7B", "u55c", "hbm"): None,
    ("2.7B", "u250", "ddr"): None,
    ("2.7B", "u250", "onchip"): "u250 has 59.57 MB of BRAM+URAM (allowed: weights: ddr)",
    ("2.7B", "kv260", "ddr"): ONCHIP_FULL,      # norm weights, state and activation buffers: 3.2 of 3.0 MB
    ("2.7B", "pynq_z2", "ddr"): ONCHIP_FULL,
}


def spec_for(tmp_path, model: str, board: str, weights: str, parallelism=None):
    shape, default_parallelism = MODELS[model]
    default_parallelism = TOO_WIDE.get((model, board), default_parallelism)
    config = write_config(tmp_path, f"{model}_{board}_{weights}".replace(".", "_"), model=shape,
                          hardware={"board": board, "weights": weights,
                                    "parallelism": parallelism or default_parallelism})
    return spec_mod.load(config)


def plan_or_error(spec):
    try:
        return planner.plan(spec), None
    except HlsgenError as exc:
        return None, str(exc)


@pytest.mark.parametrize("model, board, weights", list(DECISIONS))
def test_fit_decision(tmp_path, model, board, weights):
    plan, error = plan_or_error(spec_for(tmp_path, model, board, weights))
    expected = DECISIONS[model, board, weights]
    if expected is None:
        assert error is None
        used = estimate.design_resources(plan)
        assert all(used[k] <= planner.LOGIC_BUDGET * plan.board.resources[k] for k in used)
    else:
        assert error is not None and expected in error, error


@pytest.mark.parametrize("model, board, weights", [("tiny", "pynq_z2", "onchip"), ("370M", "kv260", "ddr")])
def test_logic_refusal_gives_the_numbers_and_a_folding_that_fits(tmp_path, model, board, weights):
    _, error = plan_or_error(spec_for(tmp_path, model, board, weights))
    numbers = re.findall(r"(LUT|FF|DSP) ([\d,]+) of ([\d,]+)", error)
    assert numbers and all(int(used.replace(",", "")) > 0.8 * int(have.replace(",", "")) for _, used, have in numbers)
    suggestion = dict((k, int(v)) for k, v in re.findall(r"(\w+) to (\d+)", error.split("allowed: reduce ")[1]))
    parallelism = {**TOO_WIDE[model, board], **suggestion}
    plan, error = plan_or_error(spec_for(tmp_path, model, board, weights, parallelism))
    assert error is None, error


def test_hbm_ports_get_channels_of_their_own_and_ranges_for_large_buffers(tmp_path):
    plan = planner.plan(spec_for(tmp_path, "2.7B", "u280", "hbm"))
    links = {p.name: p.link for p in plan.memory_ports}
    # 256 lanes: one weight port holds every kind's lane words (two-bit codes of 2.7B: ~680 MB).
    assert links == {"logits": "HBM[0]", "tokens": "HBM[0]", "next_tokens": "HBM[0]",    # one bundle
                     "emb_table": "HBM[1:2]", "w0": "HBM[3:5]"}
    assert plan.memory_port("emb_table").nbytes > 256 * 2**20      # 328 MB: two 256 MB channels
    # U55C's 512 MB channels hold the embedding in one.
    assert planner.plan(spec_for(tmp_path, "2.7B", "u55c", "hbm")).memory_port("emb_table").link == "HBM[1]"


def test_wide_folds_stripe_the_weights_over_channels_of_their_own(tmp_path):
    wide = {"pe": 32, "simd": 64, "lm_head_pe": 32, "lm_head_simd": 64}        # 2048 lanes: 8 stripes
    plan = planner.plan(spec_for(tmp_path, "2.7B", "u280", "hbm", wide))
    stripes = plan.weight_ports
    assert [p.name for p in stripes] == [f"w{s}" for s in range(8)] and plan.stripes == 8
    assert len({p.nbytes for p in stripes}) == 1
    assert sum(p.nbytes for p in stripes) * 8 == plan.weight_bits
    channels = [c for p in bundle_ports(plan).values() for c in p.channels]
    assert len(channels) == len(set(channels)) and max(channels) < 32


def test_shared_ddr_banks_take_the_weight_stripes_first_one_per_bank(tmp_path):
    wide = {"pe": 16, "simd": 64, "lm_head_pe": 16, "lm_head_simd": 64}         # 4 stripes, 6 ports, 4 banks
    plan = planner.plan(spec_for(tmp_path, "370M", "u250", "ddr", wide))
    assert sorted(p.link for p in plan.weight_ports) == ["DDR[0]", "DDR[1]", "DDR[2]", "DDR[3]"]
    # The others share by capacity: the embedding (the largest) on a bank, the logits on another.
    assert plan.memory_port("emb_table").link != plan.memory_port("logits").link
    two_banks = planner.plan(spec_for(tmp_path, "370M", "u280", "ddr", {**wide, "simd": 32, "lm_head_simd": 32}))
    assert sorted(p.link for p in two_banks.weight_ports) == ["DDR[0]", "DDR[1]"]


def test_zynq_ports_spread_over_the_hp_ports(tmp_path):
    plan = planner.plan(spec_for(tmp_path, "tiny", "kv260", "ddr"))
    links = [p.link for p in bundle_ports(plan).values()]
    assert len(links) == len(set(links)) == 3 and set(links) <= {f"S_AXI_HP{i}_FPD" for i in range(4)}


def test_onchip_design_links_only_its_logits(tmp_path):
    plan = planner.plan(spec_for(tmp_path, "tiny", "u250", "onchip"))
    assert [(p.name, p.link) for p in plan.memory_ports] == [("logits", "DDR[0]"), ("tokens", "DDR[0]"),
                                                              ("next_tokens", "DDR[0]")]


def test_buffers_beyond_the_memory_are_refused(tmp_path):
    # A 512 MB int32 embedding alone fills the PYNQ-Z2's DDR.
    config = write_config(tmp_path, "wide_vocab", model={"vocab": 32768, "hidden": 4096, "layers": 1,
                                                         "intermediate_size": 512},
                          hardware={"board": "pynq_z2", "weights": "ddr", "parallelism": {"pe": 1, "simd": 1}})
    with pytest.raises(HlsgenError, match=r"hardware.weights: ddr: the m_axi buffers need [\d,.]+ MB but the "
                                          r"board's 4 ddr channels hold 512.0 MB \(512 MB shared\)"):
        planner.plan(spec_mod.load(config))


def test_more_ports_than_channels_take_is_refused():
    one_bank = Memory(kind="ddr", bank="DDR", count=1, gbps_each=19.25, mb_each=16384)
    assert planner.spread([1 << 20] * 15, one_bank, "here") == [(0,)] * 15
    with pytest.raises(HlsgenError, match="here: more m_axi ports than channels: 16 ports on 1 ddr channels"):
        planner.spread([1 << 20] * 16, one_bank, "here")


def test_register_map_follows_the_signature(tmp_path):
    plan = planner.plan(spec_for(tmp_path, "tiny", "u280", "hbm"))
    offsets = {a.name: a.offset for a in plan.arguments}
    # Scalars: a word and a reserved word (2 words); pointers: 3 words.
    names = ("n_tokens", "batch_mode", "reset_state", "logits", "tokens", "next_tokens", "emb_table", "w0")
    assert [offsets[n] for n in names] == [0x10, 0x18, 0x20, 0x28, 0x34, 0x40, 0x4C, 0x58]
    assert [a.name for a in plan.arguments][3:] == [p.name for p in plan.memory_ports]


def test_a_bundles_arguments_share_its_channels(tmp_path):
    """logits, tokens and next_tokens are one m_axi master (gmem_out): one channel for the three,
    not three of the HBM's channels."""
    plan = planner.plan(spec_for(tmp_path, "tiny", "u280", "hbm"))
    out = [p for p in plan.memory_ports if p.bundle == "gmem_out"]
    assert [p.name for p in out] == ["logits", "tokens", "next_tokens"]
    assert len({(p.channels, p.link) for p in out}) == 1
    others = {c for p in plan.memory_ports if p.bundle != "gmem_out" for c in p.channels}
    assert not others & set(out[0].channels)


@pytest.mark.parametrize("parallelism, what", [({"pe": 256, "simd": 1}, "256 sums of"),
                                               ({"pe": 1, "simd": 1024, "lm_head_pe": 1, "lm_head_simd": 1024},
                                                "1024 int8 codes")])
def test_packets_beyond_the_ap_int_limit_are_refused(tmp_path, parallelism, what):
    config = write_config(tmp_path, "wide", model={"vocab": 1024, "hidden": 1024, "layers": 1, "intermediate_size": 2048},
                          hardware={"board": "u280", "weights": "hbm", "parallelism": parallelism})
    with pytest.raises(HlsgenError, match=rf"hardware.parallelism: the \w+ engine .* would stream {what}.* beyond "
                                          r"the 4096-bit ap_int limit of Vitis HLS"):
        planner.plan(spec_mod.load(config))


def test_a_buffer_takes_a_wider_range_when_the_stripes_fill_its_channel(tmp_path):
    """1.3B on U280 HBM with 32 stripes: the 250 MB embedding fits one 256 MB pseudo-channel only
    alone, and every channel holds a stripe, so it spans two."""
    wide = {"pe": 64, "simd": 128, "lm_head_pe": 64, "lm_head_simd": 128}
    config = write_config(tmp_path, "b13", model={"vocab": 32000, "hidden": 2048, "layers": 24, "intermediate_size": 5632},
                          hardware={"board": "u280", "weights": "hbm", "parallelism": wide})
    plan = planner.plan(spec_mod.load(config))
    emb = plan.memory_port("emb_table")
    assert emb.nbytes <= 256 * 2**20 and len(emb.channels) == 2
    stripes = [p.channels for p in plan.weight_ports]
    assert len(stripes) == 32 and sorted(c for (c,) in stripes) == list(range(32))
