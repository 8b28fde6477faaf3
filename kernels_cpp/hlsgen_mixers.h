// hlsgen kernel library: the elementwise stages around the BitLinears (one element per cycle).
//   norm      v = h * gamma                       (the RMS factor is folded into the BitLinear)
//   mlgru     gates -> recurrent state -> o       (the token mixer; state kept across tokens)
//   glu       z = up * silu(gate)                 (the channel mixer)
//   residual  out = h + delta
//   embed, argmax
#ifndef HLSGEN_MIXERS_H
#define HLSGEN_MIXERS_H

#include "hlsgen_common.h"
#include "hlsgen_math.h"

namespace hlsgen {

// Constant tables (norm weights, lower bounds, the sigmoid table, the embedding) are template
// parameters of any integer type: the generated config header picks exact-width ap types for
// synthesis and plain ints for csim.

template <class N, int K, class GAMMA>
void norm(const ap_int<N::act_width> h[K], const GAMMA gamma[K], ap_int<N::act_width> v[K]) {
norm_elements:
    for (int k = 0; k < K; k++) {
#pragma HLS PIPELINE II=1
        v[k] = saturate<N::act_width>(rshift_round<N::gamma_frac>(wide_t(h[k]) * wide_t(gamma[k])), "norm");
    }
}

// MLGRU on one token. i, f, g arrive as streams from their BitLinears; `state` persists.
template <class N, int D, class LB, class GAMMA, class TABLE>
void mlgru(hls::stream<ap_int<N::act_width> >& i_in, hls::stream<ap_int<N::act_width> >& f_in,
           hls::stream<ap_int<N::act_width> >& g_in, const LB lower_bound[D], const GAMMA g_norm[D],
           ap_int<N::state_width> state[D], const TABLE sigmoid_table[N::sigmoid_entries], ap_int<N::mix_width> o[D]) {
    const int F = N::act_frac, Q = N::sigmoid_frac, S = N::state_frac;
    const wide_t one = wide_t(1) << Q;
mlgru_elements:
    for (int k = 0; k < D; k++) {
#pragma HLS PIPELINE II=1
        const wide_t i = pop(i_in, "mlgru.i");
        const wide_t f = pop(f_in, "mlgru.f");
        const wide_t g = pop(g_in, "mlgru.g");
        const wide_t lb = wide_t(lower_bound[k]);
        const wide_t forget = lb + rshift_round<Q>((one - lb) * sigmoid<N, TABLE>(f, sigmoid_table));
        const wide_t silu_i = rshift_round<F + Q - S>(i * sigmoid<N, TABLE>(i, sigmoid_table));
        const wide_t candidate = rshift_round<Q>(silu_i * (one - forget));
        const ap_int<N::state_width> s =
            saturate<N::state_width>(rshift_round<Q>(forget * state[k]) + candidate, "state");
        state[k] = s;
        const wide_t silu_s = rshift_round<Q>(wide_t(s) * sigmoid<N, TABLE>(rshift_round<S - F>(s), sigmoid_table));
        const wide_t gated = saturate<N::act_width>(rshift_round<N::gamma_frac>(g * wide_t(g_norm[k])), "g_norm");
        o[k] = saturate<N::mix_width>(rshift_round<F + S - N::mix_frac>(gated * silu_s), "mlgru_out");
    }
}

// GLU on one token: the fused gate_proj streams the gate half first, then the up half.
template <class N, int I, class TABLE>
void glu(hls::stream<ap_int<N::act_width> >& gate_up, const TABLE sigmoid_table[N::sigmoid_entries],
         ap_int<N::mix_width> z[I]) {
    ap_int<N::mix_width + N::act_width> silu_gate[I];
glu_gate:
    for (int k = 0; k < I; k++) {
#pragma HLS PIPELINE II=1
        const wide_t gate = pop(gate_up, "glu.gate");
        silu_gate[k] = rshift_round<N::act_frac + N::sigmoid_frac - N::mix_frac>(gate * sigmoid<N, TABLE>(gate, sigmoid_table));
    }
glu_up:
    for (int k = 0; k < I; k++) {
#pragma HLS PIPELINE II=1
        const wide_t up = pop(gate_up, "glu.up");
        z[k] = saturate<N::mix_width>(rshift_round<N::act_frac>(up * silu_gate[k]), "glu");
    }
}

template <class N, int K>
void residual(const ap_int<N::act_width> h[K], hls::stream<ap_int<N::act_width> >& delta, ap_int<N::act_width> out[K]) {
residual_elements:
    for (int k = 0; k < K; k++) {
#pragma HLS PIPELINE II=1
        out[k] = saturate<N::act_width>(wide_t(h[k]) + pop(delta, "residual.delta"), "residual");
    }
}

template <class N, int V, int H, class ACT>
void embed(ap_uint<32> token, const ACT table[V][H], ap_int<N::act_width> h[H]) {
embed_elements:
    for (int k = 0; k < H; k++) {
#pragma HLS PIPELINE II=1
        h[k] = ap_int<N::act_width>(table[token][k]);
    }
}

// The same from an off-chip table (m_axi, one 32-bit word per entry, row-major [V][H]).
template <class N, int V, int H>
void embed(ap_uint<32> token, const ap_int<32>* table, ap_int<N::act_width> h[H]) {
embed_burst:
    for (int k = 0; k < H; k++) {
#pragma HLS PIPELINE II=1
        h[k] = ap_int<N::act_width>(table[token * H + k]);
    }
}

// Writes the logits out and returns the first index of the largest one (greedy decoding).
template <class N, int V>
ap_uint<32> argmax(hls::stream<ap_int<N::act_width> >& logits_in, ap_int<N::act_width> logits[V]) {
    ap_int<N::act_width> best = 0;
    ap_uint<32> best_index = 0;
argmax_elements:
    for (int k = 0; k < V; k++) {
#pragma HLS PIPELINE II=1
        const ap_int<N::act_width> x = pop(logits_in, "argmax.logits");
        logits[k] = x;
        if (k == 0 || x > best) {
            best = x;
            best_index = k;
        }
    }
    return best_index;
}

}  // namespace hlsgen

#endif
