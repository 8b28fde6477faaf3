// hlsgen kernel library: the elementwise stages around the BitLinears, E elements per cycle.
//   norm      v = h * gamma                       (the RMS factor is folded into the BitLinear)
//   mlgru     gates -> recurrent state -> o       (the token mixer; state kept across tokens)
//   glu       z = up * silu(gate)                 (the channel mixer)
//   residual  out = h + delta
//   embed, argmax
// E is the PE of the BitLinear that feeds the stage: its rescale emits one packet of E act values
// per cycle (hlsgen_bitlinear.h), and the stage consumes one packet per cycle, so no stage is
// narrower than its producer. Arrays are partitioned cyclic by E (element k in bank k % E), so
// the E lanes of a cycle touch E different banks; the lane loops are unrolled.
#ifndef HLSGEN_MIXERS_H
#define HLSGEN_MIXERS_H

#include "hlsgen_common.h"
#include "hlsgen_math.h"

namespace hlsgen {

// Constant tables (norm weights, lower bounds, the sigmoid table, the embedding) are template
// parameters of any integer type: the generated config header picks exact-width ap types for
// synthesis and plain ints for csim.

// Lane p of a packet of E act values (the layout rescale writes: lane 0 in the low bits).
template <class N, int P>
inline wide_t act_lane(const ap_uint<P>& packet, unsigned p) {
#pragma HLS INLINE
    return wide_t(ap_int<N::act_width>(get_field<N::act_width>(packet, p)));
}

// OUT (norm, mlgru, glu): the element type of the next BitLinear engine's input, at least as
// wide as the value written (an engine shared by act and mix inputs takes the wider).
template <class N, int K, int E, class GAMMA, class OUT>
void norm(const ap_int<N::act_width> h[K], const GAMMA gamma[K], OUT v[K]) {
    static_assert(K % E == 0, "the lanes divide the vector");
#pragma HLS ARRAY_PARTITION variable=h cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=gamma cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=v cyclic factor=E
norm_folds:
    for (int c = 0; c < K / E; c++) {
#pragma HLS PIPELINE II=1
    norm_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            v[k] = saturate<N::act_width>(rshift_round<N::gamma_frac>(wide_t(h[k]) * wide_t(gamma[k])), "norm");
        }
    }
}

// MLGRU on one token. i, f, g arrive as E-wide packets from their BitLinears (which share the
// layer PE); `state` persists. Each lane evaluates three sigmoids, i.e. reads the constant
// sigmoid table at six data-dependent addresses per cycle (the GLU: two per lane), which cyclic
// partitioning cannot serve: at II=1 the table needs that many read ports (ROM copies).
template <class N, int D, int E, class LB, class GAMMA, class TABLE, class OUT>
void mlgru(hls::stream<ap_uint<E * N::act_width> >& i_in, hls::stream<ap_uint<E * N::act_width> >& f_in,
           hls::stream<ap_uint<E * N::act_width> >& g_in, const LB lower_bound[D], const GAMMA g_norm[D],
           ap_int<N::state_width> state[D], const TABLE sigmoid_table[N::sigmoid_entries], OUT o[D]) {
    static_assert(D % E == 0, "the lanes divide the vector");
#pragma HLS ARRAY_PARTITION variable=lower_bound cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=g_norm cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=state cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=o cyclic factor=E
    const int F = N::act_frac, Q = N::sigmoid_frac, S = N::state_frac;
    const wide_t one = wide_t(1) << Q;
mlgru_folds:
    for (int c = 0; c < D / E; c++) {
#pragma HLS PIPELINE II=1
        const ap_uint<E * N::act_width> i_packet = pop(i_in, "mlgru.i");
        const ap_uint<E * N::act_width> f_packet = pop(f_in, "mlgru.f");
        const ap_uint<E * N::act_width> g_packet = pop(g_in, "mlgru.g");
    mlgru_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            const wide_t i = act_lane<N>(i_packet, p);
            const wide_t f = act_lane<N>(f_packet, p);
            const wide_t g = act_lane<N>(g_packet, p);
            const wide_t lb = wide_t(lower_bound[k]);
            const wide_t forget = lb + rshift_round<Q>((one - lb) * sigmoid<N, TABLE>(f, sigmoid_table));
            const wide_t silu_i = rshift_round<F + Q - S>(i * sigmoid<N, TABLE>(i, sigmoid_table));
            const wide_t candidate = rshift_round<Q>(silu_i * (one - forget));
            const ap_int<N::state_width> s =
                saturate<N::state_width>(rshift_round<Q>(forget * state[k]) + candidate, "state");
            state[k] = s;
            const wide_t silu_s =
                rshift_round<Q>(wide_t(s) * sigmoid<N, TABLE>(rshift_round<S - F>(s), sigmoid_table));
            const wide_t gated = saturate<N::act_width>(rshift_round<N::gamma_frac>(g * wide_t(g_norm[k])), "g_norm");
            o[k] = saturate<N::mix_width>(rshift_round<F + S - N::mix_frac>(gated * silu_s), "mlgru_out");
        }
    }
}

// GLU on one token: the fused gate_proj streams the gate half first, then the up half, E values
// per packet (E divides I, so no packet straddles the halves).
template <class N, int I, int E, class TABLE, class OUT>
void glu(hls::stream<ap_uint<E * N::act_width> >& gate_up, const TABLE sigmoid_table[N::sigmoid_entries],
         OUT z[I]) {
    static_assert(I % E == 0, "the lanes divide the intermediate size");
#pragma HLS ARRAY_PARTITION variable=z cyclic factor=E
    ap_int<N::mix_width + N::act_width> silu_gate[I];
#pragma HLS ARRAY_PARTITION variable=silu_gate cyclic factor=E
glu_gate:
    for (int c = 0; c < I / E; c++) {
#pragma HLS PIPELINE II=1
        const ap_uint<E * N::act_width> packet = pop(gate_up, "glu.gate");
    glu_gate_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const wide_t gate = act_lane<N>(packet, p);
            silu_gate[c * E + p] =
                rshift_round<N::act_frac + N::sigmoid_frac - N::mix_frac>(gate * sigmoid<N, TABLE>(gate, sigmoid_table));
        }
    }
glu_up:
    for (int c = 0; c < I / E; c++) {
#pragma HLS PIPELINE II=1
        const ap_uint<E * N::act_width> packet = pop(gate_up, "glu.up");
    glu_up_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            z[k] = saturate<N::mix_width>(rshift_round<N::act_frac>(act_lane<N>(packet, p) * silu_gate[k]), "glu");
        }
    }
}

template <class N, int K, int E>
void residual(const ap_int<N::act_width> h[K], hls::stream<ap_uint<E * N::act_width> >& delta,
              ap_int<N::act_width> out[K]) {
    static_assert(K % E == 0, "the lanes divide the vector");
#pragma HLS ARRAY_PARTITION variable=h cyclic factor=E
#pragma HLS ARRAY_PARTITION variable=out cyclic factor=E
residual_folds:
    for (int c = 0; c < K / E; c++) {
#pragma HLS PIPELINE II=1
        const ap_uint<E * N::act_width> packet = pop(delta, "residual.delta");
    residual_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            out[k] = saturate<N::act_width>(wide_t(h[k]) + act_lane<N>(packet, p), "residual");
        }
    }
}

// The embedding stays one element per cycle: the off-chip table holds one int32 word per entry,
// so its m_axi read brings one element per cycle, and it runs once per token (H cycles).
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

// Writes the logits out and returns the first index of the largest one (greedy decoding), E
// logits per cycle. Lane p sees indices p, p + E, p + 2E, ... in increasing order and keeps its
// first maximum (strictly greater replaces); the lanes' winners are then reduced pairwise in a
// tree that prefers the lower index on equal values, so the result is the first maximum overall.
// `logits` is the top's m_axi output (not partitioned). Its port takes one act_t per cycle, so
// with E > 1 these writes, not the compares, limit the loop until the port is widened (a change
// of the top's signature, not made here); perf.py counts V / E cycles.
template <class N, int V, int E>
ap_uint<32> argmax(hls::stream<ap_uint<E * N::act_width> >& logits_in, ap_int<N::act_width> logits[V]) {
    static_assert(V % E == 0, "the lanes divide the vocabulary");
    ap_int<N::act_width> best[E];
    ap_uint<32> best_index[E];
#pragma HLS ARRAY_PARTITION variable=best complete
#pragma HLS ARRAY_PARTITION variable=best_index complete
argmax_folds:
    for (int c = 0; c < V / E; c++) {
#pragma HLS PIPELINE II=1
        const ap_uint<E * N::act_width> packet = pop(logits_in, "argmax.logits");
    argmax_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const ap_int<N::act_width> x = ap_int<N::act_width>(get_field<N::act_width>(packet, p));
            logits[c * E + p] = x;
            if (c == 0 || x > best[p]) {
                best[p] = x;
                best_index[p] = c * E + p;
            }
        }
    }
argmax_reduce:
    for (int step = 1; step < E; step *= 2) {
#pragma HLS UNROLL
    argmax_pairs:
        for (int p = 0; p + step < E; p += 2 * step) {
#pragma HLS UNROLL
            const int q = p + step;
            if (best[q] > best[p] || (best[q] == best[p] && best_index[q] < best_index[p])) {
                best[p] = best[q];
                best_index[p] = best_index[q];
            }
        }
    }
    return best_index[0];
}

}  // namespace hlsgen

#endif
