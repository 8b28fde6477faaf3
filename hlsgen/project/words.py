"""Weight lane words: the bits the HLS ROMs and m_axi buffers hold, and the RTL ROMs are cut from."""

from __future__ import annotations

import numpy as np

from hlsgen.hardware.plan import WORD_BITS, BitLinearPlan, HardwarePlan
from hlsgen.model.checkpoint import pack_2bit, pack_5trit
from hlsgen.model.weights import Weights


def weight_words(codes: np.ndarray, b: BitLinearPlan) -> np.ndarray:
    """One matrix as lane words (uint64 [words, 8 * stripes], least significant first), in MVU order.

    Cycle (nf, sf) reads lane pe*SIMD + s = code[nf*PE + pe, sf*SIMD + s]; lanes fill words
    from bit 0 up (2bit), or each stripe's lanes run on five per byte (5trit).  Uint64 columns
    8s..8s+7 are stripe s, the 512 bits its port carries.
    """
    order = codes.reshape(b.rows // b.pe, b.pe, b.cols // b.simd, b.simd).transpose(0, 2, 1, 3)
    if b.packing == "5trit":
        # Stripe s: lane part s of every fold, five codes per byte, running on across words.
        parts = order.reshape(-1, b.stripes, b.part_lanes)
        return np.concatenate([_padded(pack_5trit(parts[:, s].reshape(-1)), b.words_per_matrix * WORD_BITS // 8)
                               .view("<u8").reshape(b.words_per_matrix, 8) for s in range(b.stripes)], axis=1)
    packed = _padded(pack_2bit(order.reshape(-1)), b.words_per_matrix * b.lane_word_bits // 8)
    return packed.view("<u8").reshape(b.words_per_matrix, 8 * b.stripes)


def _padded(packed: np.ndarray, nbytes: int) -> np.ndarray:
    padded = np.zeros(nbytes, np.uint8)
    padded[:packed.size] = packed
    return padded


def kind_words(plan: HardwarePlan, weights: Weights, kind: str) -> np.ndarray:
    b = plan.bitlinear(kind)
    projs = weights.of_kind(kind)
    return np.concatenate([weight_words(p.codes, b) for p in projs])


def stripe_buffers(plan: HardwarePlan, weights: Weights) -> list[np.ndarray]:
    """The off-chip weight buffers, one per port: stripe s of every kind's lane words, kinds in
    plan order (each starts at its base_word)."""
    every_kind = np.concatenate([kind_words(plan, weights, b.kind) for b in plan.bitlinears])
    return [every_kind[:, 8 * s:8 * s + 8] for s in range(plan.stripes)]
