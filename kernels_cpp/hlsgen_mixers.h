// hlsgen kernel library: the elementwise stages around the BitLinears, E elements per cycle.
//   norm      v = h * gamma                       (the RMS factor is folded into the BitLinear)
//   mlgru     gates -> recurrent state -> o       (the token mixer; state kept across tokens)
//   glu       z = up * silu(gate)                 (the channel mixer)
//   residual  out = h + delta
//   embed, argmax (the m_axi ends: 512-bit words of 16 int32 slots)
// E is the PE of the BitLinear that feeds the stage: its rescale emits one packet of E act values
// per cycle (hlsgen_bitlinear.h), and the stage consumes one packet per cycle, so no stage is
// narrower than its producer. The lane loops are unrolled; the arrays they touch are partitioned
// where they are declared (the top), cyclic by a multiple of E (element k in bank k % factor), so
// the E lanes of a cycle touch E different banks (hlsgen/hardware/memories.py checks the budget).
// Every kernel takes whole arrays and indices (token t, layer l, input slot, projection k), never
// a row pointer, and whole arrays of streams with the index of the one it reads.
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
// wide as the value written (an engine shared by act and mix inputs takes the wider); the stage
// writes v[slot][t][0 .. K), the engine's input row, which may be longer.
template <class N, int K, int E, class GAMMA, class OUT, int B, int COLS>
void norm(const ap_int<N::act_width> h[][K], unsigned t, const GAMMA gamma[][K], unsigned l, OUT v[][B][COLS],
          unsigned slot) {
    static_assert(K % E == 0 && K <= COLS, "the lanes divide the vector, which fits the row");
norm_folds:
    for (int c = 0; c < K / E; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("norm_folds");
    norm_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            HLSGEN_READ(h, t, k);
            HLSGEN_READ(gamma, l, k);
            HLSGEN_WRITE(v, slot, t, k);
            v[slot][t][k] = saturate<N::act_width>(rshift_round<N::gamma_frac>(wide_t(h[t][k]) * wide_t(gamma[l][k])), "norm");
        }
    }
}

// MLGRU on one token. i, f, g arrive as E-wide packets from their BitLinears (which share the
// layer PE), from streams[ik][t], streams[fk][t], streams[gk][t]; state[slot][l] persists. Each
// lane evaluates three sigmoids, i.e. reads the constant sigmoid table at six data-dependent
// addresses per cycle, which no partition of one table can serve: call c of lane p reads its own
// copy's pair of banks (sigmoid_copy), ceil(3E / 2) copies in all.
template <class N, int D, int E, class LB, class GAMMA, class TABLE, class OUT, int B, int DEPTH, int L, int COLS>
void mlgru(hls::stream<ap_uint<E * N::act_width>, DEPTH> streams[][B], unsigned ik, unsigned fk, unsigned gk, unsigned t,
           const LB lower_bound[][D], const GAMMA g_norm[][D], unsigned l, ap_int<N::state_width> state[][L][D],
           unsigned slot, const TABLE sigmoid_table[][N::sigmoid_entries], OUT o[][B][COLS], unsigned o_slot) {
    static_assert(D % E == 0 && D <= COLS, "the lanes divide the vector, which fits the row");
    const int F = N::act_frac, Q = N::sigmoid_frac, S = N::state_frac;
    const wide_t one = wide_t(1) << Q;
mlgru_folds:
    for (int c = 0; c < D / E; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("mlgru_folds");
        const ap_uint<E * N::act_width> i_packet = pop(streams[ik][t], "mlgru.i");
        const ap_uint<E * N::act_width> f_packet = pop(streams[fk][t], "mlgru.f");
        const ap_uint<E * N::act_width> g_packet = pop(streams[gk][t], "mlgru.g");
    mlgru_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int k = c * E + p;
            const wide_t i = act_lane<N>(i_packet, p);
            const wide_t f = act_lane<N>(f_packet, p);
            const wide_t g = act_lane<N>(g_packet, p);
            HLSGEN_READ(lower_bound, l, k);
            HLSGEN_READ(g_norm, l, k);
            HLSGEN_READ(state, slot, l, k);
            HLSGEN_WRITE(state, slot, l, k);
            HLSGEN_WRITE(o, o_slot, t, k);
            const wide_t lb = wide_t(lower_bound[l][k]);
            const wide_t forget =
                lb + rshift_round<Q>((one - lb) * sigmoid<N, TABLE>(f, sigmoid_table, sigmoid_copy(3, p, 0)));
            const wide_t silu_i = rshift_round<F + Q - S>(i * sigmoid<N, TABLE>(i, sigmoid_table, sigmoid_copy(3, p, 1)));
            const wide_t candidate = rshift_round<Q>(silu_i * (one - forget));
            const ap_int<N::state_width> s =
                saturate<N::state_width>(rshift_round<Q>(forget * state[slot][l][k]) + candidate, "state");
            state[slot][l][k] = s;
            const wide_t silu_s = rshift_round<Q>(
                wide_t(s) * sigmoid<N, TABLE>(rshift_round<S - F>(s), sigmoid_table, sigmoid_copy(3, p, 2)));
            const wide_t gated = saturate<N::act_width>(rshift_round<N::gamma_frac>(g * wide_t(g_norm[l][k])), "g_norm");
            o[o_slot][t][k] = saturate<N::mix_width>(rshift_round<F + S - N::mix_frac>(gated * silu_s), "mlgru_out");
        }
    }
}

// GLU on one token: the fused gate_proj streams the gate half first, then the up half, E values
// per packet (E divides I, so no packet straddles the halves), on streams[k][t]. One sigmoid per
// lane: lane p reads copy p / 2 (sigmoid_copy).
template <class N, int I, int E, class TABLE, class OUT, int B, int DEPTH, int COLS>
void glu(hls::stream<ap_uint<E * N::act_width>, DEPTH> streams[][B], unsigned k, unsigned t,
         const TABLE sigmoid_table[][N::sigmoid_entries], OUT z[][B][COLS], unsigned z_slot) {
    static_assert(I % E == 0 && I <= COLS, "the lanes divide the intermediate size, which fits the row");
    ap_int<N::mix_width + N::act_width> silu_gate[I];
#pragma HLS ARRAY_PARTITION variable=silu_gate cyclic factor=E
    HLSGEN_LAYOUT(silu_gate, "silu_gate", 0, 1, E, 0);
glu_gate:
    for (int c = 0; c < I / E; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("glu_gate");
        const ap_uint<E * N::act_width> packet = pop(streams[k][t], "glu.gate");
    glu_gate_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const wide_t gate = act_lane<N>(packet, p);
            HLSGEN_WRITE(silu_gate, c * E + p);
            silu_gate[c * E + p] = rshift_round<N::act_frac + N::sigmoid_frac - N::mix_frac>(
                gate * sigmoid<N, TABLE>(gate, sigmoid_table, sigmoid_copy(1, p, 0)));
        }
    }
glu_up:
    for (int c = 0; c < I / E; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("glu_up");
        const ap_uint<E * N::act_width> packet = pop(streams[k][t], "glu.up");
    glu_up_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int j = c * E + p;
            HLSGEN_READ(silu_gate, j);
            HLSGEN_WRITE(z, z_slot, t, j);
            z[z_slot][t][j] = saturate<N::mix_width>(rshift_round<N::act_frac>(act_lane<N>(packet, p) * silu_gate[j]), "glu");
        }
    }
}

// out[t] = h[t] + the delta on streams[k][t].
template <class N, int K, int E, int B, int DEPTH>
void residual(const ap_int<N::act_width> h[][K], unsigned t, hls::stream<ap_uint<E * N::act_width>, DEPTH> streams[][B],
              unsigned k, ap_int<N::act_width> out[][K]) {
    static_assert(K % E == 0, "the lanes divide the vector");
residual_folds:
    for (int c = 0; c < K / E; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("residual_folds");
        const ap_uint<E * N::act_width> packet = pop(streams[k][t], "residual.delta");
    residual_lanes:
        for (int p = 0; p < E; p++) {
#pragma HLS UNROLL
            const int j = c * E + p;
            HLSGEN_READ(h, t, j);
            HLSGEN_WRITE(out, t, j);
            out[t][j] = saturate<N::act_width>(wide_t(h[t][j]) + act_lane<N>(packet, p), "residual");
        }
    }
}

// The embedding table and the logits cross their m_axi ports as 512-bit words of 16 int32 slots,
// slot k in bits 32k..32k+31 (little-endian): the host sees plain int32 arrays (a logit is act_t
// sign-extended), padded to whole words. One word per cycle is what a 512-bit port moves.
const int INT32_SLOTS = 16;
typedef ap_uint<32 * INT32_SLOTS> int32_word_t;

#ifndef __SYNTHESIS__
// The host's side of that layout (testbench, csim device, kernel tests): `count` int32 values
// into whole words, the slots past them set to `fill`; and slot k back out, sign-extended.
inline std::vector<int32_word_t> int32_words(const int* values, size_t count, int fill = 0) {
    std::vector<int32_word_t> words((count + INT32_SLOTS - 1) / INT32_SLOTS);
    for (size_t k = 0; k < words.size() * INT32_SLOTS; k++)
        set_field<32>(words[k / INT32_SLOTS], k % INT32_SLOTS, ap_uint<32>(k < count ? values[k] : fill));
    return words;
}

inline int int32_slot(const int32_word_t* words, size_t k) {
    return ap_int<32>(get_field<32>(words[k / INT32_SLOTS], k % INT32_SLOTS)).to_int();
}
#endif

// From the on-chip ROM the embedding row arrives INT32_SLOTS elements per cycle, as from the
// off-chip table: the ROM is split into that many banks along the row (more BRAM ports, the same
// bits), ceil(H / INT32_SLOTS) cycles per token.
template <class N, int V, int H, class ACT>
void embed(ap_uint<32> token, const ACT table[V][H], ap_int<N::act_width> h[][H], unsigned t) {
    const int S = INT32_SLOTS;
embed_chunks:
    for (int c = 0; c < (H + S - 1) / S; c++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("embed_chunks");
    embed_lanes:
        for (int p = 0; p < S; p++) {
#pragma HLS UNROLL
            if (c * S + p < H) {
                HLSGEN_READ(table, token, c * S + p);
                HLSGEN_WRITE(h, t, c * S + p);
                h[t][c * S + p] = ap_int<N::act_width>(table[token][c * S + p]);
            }
        }
    }
}

// From the off-chip table (m_axi, row-major [V][H] int32 in words of INT32_SLOTS): the row's
// words in one unconditional loop at affine addresses (a burst), into a buffer; then INT32_SLOTS
// elements of h per cycle. When H is not a multiple of the word, a row starts `offset` slots into
// its first word and each chunk of h straddles two words: then the second loop runs one cycle
// behind (LAG), shifting the last two words into place (the word past the row's own reads as 0).
template <class N, int V, int H>
void embed(ap_uint<32> token, const int32_word_t* table, ap_int<N::act_width> h[][H], unsigned t) {
    const int S = INT32_SLOTS, CHUNKS = (H + S - 1) / S, LAG = H % S ? 1 : 0;
    const unsigned long long start = (unsigned long long)token * H;
    const unsigned offset = LAG ? unsigned(start % S) : 0u;
    const unsigned words = (offset + H + S - 1) / S;
    int32_word_t row[CHUNKS + LAG];
    HLSGEN_LAYOUT(row, "embed_row", 0, 0, 0, 0);   // one bank
embed_read:
    for (unsigned i = 0; i < words; i++) {
#pragma HLS LOOP_TRIPCOUNT max=CHUNKS + LAG
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("embed_read");
        HLSGEN_WRITE(row, i);
        row[i] = table[start / S + i];
    }
    int32_word_t previous = 0;
embed_words:
    for (int i = 0; i < CHUNKS + LAG; i++) {
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("embed_words");
        if (unsigned(i) < words) {
            HLSGEN_READ(row, i);
        }
        const int32_word_t word = unsigned(i) < words ? row[i] : int32_word_t(0);
        const ap_uint<64 * S> pair = (ap_uint<64 * S>(word) << (32 * S)) | ap_uint<64 * S>(previous);
        const int32_word_t chunk = LAG ? int32_word_t(pair >> (32 * offset)) : word;
        previous = word;
        const int c = i - LAG;
    embed_slots:
        for (int p = 0; p < S; p++) {
#pragma HLS UNROLL
            if (c >= 0 && c * S + p < H) {
                HLSGEN_WRITE(h, t, c * S + p);
                h[t][c * S + p] = ap_int<N::act_width>(ap_int<32>(get_field<32>(chunk, p)));
            }
        }
    }
}

// Writes the logits out and returns the first index of the largest one (greedy decoding).
// The logits arrive E per packet on streams[k][t]; token t's logits go to words
// t * WORDS .. t * WORDS + WORDS - 1 of the m_axi port, one word of INT32_SLOTS per iteration, an
// unconditional write at an affine address (a burst). Each step handles G = min(E, INT32_SLOTS)
// logits, PER_WORD = INT32_SLOTS / G steps per word: an iteration takes PER_WORD packets when E is
// narrower than the word (II = PER_WORD, the packets' rate: max(V / E, V / INT32_SLOTS) cycles as
// before), and a packet wider than a word is popped once per E / G iterations. E and the word
// divide one another: lm_head PEs are powers of two (planner.check_folding).
// Lane p of the G compare lanes sees indices p, p + G, p + 2G, ... in increasing order and keeps
// its first maximum (strictly greater replaces); the lanes' winners are then reduced pairwise in
// a tree that prefers the lower index on equal values, so the result is the first maximum overall.
template <class N, int V, int E, int B, int DEPTH>
ap_uint<32> argmax(hls::stream<ap_uint<E * N::act_width>, DEPTH> streams[][B], unsigned k, unsigned t,
                   int32_word_t* logits) {
    const int S = INT32_SLOTS, G = E < S ? E : S, SLICES = E / G, PER_WORD = S / G, W = N::act_width;
    const int STEPS = V / G, WORDS = (V + S - 1) / S;
    static_assert(V % E == 0, "the lanes divide the vocabulary");
    static_assert(E % S == 0 || S % E == 0, "the packet and the logit word divide one another");
    ap_int<W> best[G];
    ap_uint<32> best_index[G];
#pragma HLS ARRAY_PARTITION variable=best complete
#pragma HLS ARRAY_PARTITION variable=best_index complete
    ap_uint<E * W> packet = 0;
argmax_words:
    for (int w = 0; w < WORDS; w++) {
#pragma HLS PIPELINE II=PER_WORD
        int32_word_t word = 0;
    argmax_steps:
        for (int q = 0; q < PER_WORD; q++) {
#pragma HLS UNROLL
            const int step = w * PER_WORD + q;
            if (step < STEPS) {
                if (step % SLICES == 0) packet = pop(streams[k][t], "argmax.logits");
                const ap_uint<G * W> slice = get_field<G * W>(packet, step % SLICES);
            argmax_lanes:
                for (int p = 0; p < G; p++) {
#pragma HLS UNROLL
                    const ap_int<W> x = ap_int<W>(get_field<W>(slice, p));
                    set_field<32>(word, q * G + p, ap_uint<32>(ap_int<32>(x)));
                    if (step == 0 || x > best[p]) {
                        best[p] = x;
                        best_index[p] = step * G + p;
                    }
                }
            }
        }
        logits[t * WORDS + w] = word;
    }
argmax_reduce:
    for (int step = 1; step < G; step *= 2) {
#pragma HLS UNROLL
    argmax_pairs:
        for (int p = 0; p + step < G; p += 2 * step) {
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
