// hlsgen kernel library: sigmoid, SiLU and the integer square root, bit-exact with hlsgen/model/numerics.py.
// (The open hls_math.h is a non-bit-accurate stub, so nothing here uses it.)
#ifndef HLSGEN_MATH_H
#define HLSGEN_MATH_H

#include "hlsgen_common.h"

namespace hlsgen {

// sigmoid(x), x with N::act_frac fraction bits, result with N::sigmoid_frac (1.0 == 2**frac).
// Table of sigmoid(k * 2**-step_bits) for |x| < range, linear interpolation in between, and
// sigmoid(-x) = 1 - sigmoid(x). TABLE is any integer type (see the generated config header).
// A call reads entries index and index + 1 of `table`, one even and one odd: with the table split
// in two banks (even, odd entries) a call takes one port of each, so one dual-port copy serves
// two calls per cycle. The caller picks the copy (`copy`), from the plan's port budget.
template <class N, class TABLE>
wide_t sigmoid(wide_t x, const TABLE table[][N::sigmoid_entries], unsigned copy) {
#pragma HLS INLINE
    const int FINE = N::act_frac - N::sigmoid_step_bits;
    const wide_t max_mag = (wide_t(N::sigmoid_range) << N::act_frac) - 1;
    wide_t mag = x < 0 ? wide_t(-x) : x;
    if (mag > max_mag) mag = max_mag;
    const ap_uint<32> index = ap_uint<32>(mag >> FINE);
    const wide_t fine = mag & ((wide_t(1) << FINE) - 1);
    const wide_t lo = table[copy][index];
    const wide_t hi = table[copy][index + 1];
    HLSGEN_READ(table, copy, index);
    HLSGEN_READ(table, copy, index + 1);
    const wide_t y = lo + rshift_round<FINE>((hi - lo) * fine);
    return x < 0 ? wide_t((wide_t(1) << N::sigmoid_frac) - y) : y;
}

// The sigmoid calls per lane of the stages that read a table copy: 3 in mlgru, 1 in glu. Call c of
// lane p takes copy (CALLS p + c) / 2: two calls per copy, one read per bank each.
const int SIGMOID_CALLS_PER_COPY = 2;
inline unsigned sigmoid_copy(int calls, int lane, int call) { return unsigned(calls * lane + call) / SIGMOID_CALLS_PER_COPY; }

// floor(sqrt(n)), bit by bit: W/2 iterations of compare-and-subtract, no multiplier.
template <int W>
ap_uint<W> isqrt(ap_uint<W> n) {
    static_assert(W % 2 == 0, "isqrt needs an even width");
    ap_uint<W> root = 0;
    ap_uint<W> bit = ap_uint<W>(1) << (W - 2);
isqrt_digits:
    for (int i = 0; i < W / 2; i++) {
        if (n >= root + bit) {
            n -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

}  // namespace hlsgen

#endif
