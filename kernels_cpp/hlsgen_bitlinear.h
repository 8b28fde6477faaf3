// hlsgen kernel library: the BitLinear engine.
//
//   quantise ──codes──▶ mvu ──acc──▶ rescale ──▶ out (PE act values per packet)
//   (2 passes)            ▲             ▲
//   stream_weights ───────┘   scale ────┘ (one per token, from quantise)
//
// C (one config struct per engine, written by the generator) sets the folding (PE rows x SIMD
// columns per cycle), every bit width, the largest shape and the batch: the most tokens one call
// runs.  Each call runs one projection's shape_t on n <= batch tokens, and each weight lane is
// read once and used for all n of them, so the projections of a layer share one engine and a
// call's tokens share one pass over the weights.  N holds the numeric formats.
#ifndef HLSGEN_BITLINEAR_H
#define HLSGEN_BITLINEAR_H

#include "hlsgen_common.h"
#include "hlsgen_math.h"

namespace hlsgen {

// One projection as its engine runs it: rows and columns (multiples of PE and SIMD, at most the
// engine's), and where its matrices' lane words start in the weight source.
struct shape_t {
    unsigned rows;
    unsigned cols;
    unsigned words_per_matrix;
    unsigned base_word;
};

// Weight words are 512 bits of 2-bit codes (0b01 = +1, 0b11 = -1, 0 = 0). A fold of up to 256
// lanes takes a whole fraction of one word; a wider fold takes a lane word of several 512-bit
// stripes, one from each weight port, read in the same cycle.
typedef ap_uint<512> weight_word_t;

// The off-chip weight ports: stripe s of every lane word sits at the same index in port s.
template <int STRIPES>
struct weight_stripes {
    const weight_word_t* port[STRIPES];
};

// Stripe s of lane word `index`: from the weight ports, or from a ROM row's 8 chunks.
template <int STRIPES>
weight_word_t fetch_stripe(const weight_stripes<STRIPES>& src, unsigned index, int s) {
#pragma HLS INLINE
    return src.port[s][index];
}

// On-chip ROMs hold a lane word as CHUNKS 64-bit literals, least significant first.
template <int CHUNKS>
weight_word_t fetch_stripe(const uint64_t (*src)[CHUNKS], unsigned index, int s) {
#pragma HLS INLINE
    weight_word_t word;
fetch_chunks:
    for (int c = 0; c < 8; c++) {
#pragma HLS UNROLL
        HLSGEN_READ(src, index, 8 * s + c);
        set_field<64>(word, c, src[index][8 * s + c]);
    }
    return word;
}

// The 2-bit codes of one MVU fold (PE * SIMD lanes). An ap_uint is at most 4096 bits wide in
// Vitis HLS, so a fold of more than 256 lanes travels as 512-bit parts, one per weight stripe, each
// in a FIFO of its own (plain ap_uint payloads): lane j is bits [2 (j % 256), 2 (j % 256) + 2) of
// part j / 256.
template <int LANES>
struct fold_parts {
    static const int PARTS = LANES > 256 ? LANES / 256 : 1;
    static const int PART_BITS = LANES > 256 ? 512 : 2 * LANES;
};
template <class C>
using lane_part_t = ap_uint<fold_parts<C::pe * C::simd>::PART_BITS>;
// An engine's weight lanes: an array of fold_parts::PARTS streams, lane_depth folds deep each.
template <class C>
using lane_stream_t = hls::stream<lane_part_t<C>, C::lane_depth>;

// Raw weight words between the burst reader and the decoder: a burst's worth per stripe.
static const int RAW_DEPTH = 64;
typedef hls::stream<weight_word_t, RAW_DEPTH> raw_stream_t;

// round_half_away(127 |y| / m) exactly, for |y| <= m: floor(n / d), n = 254 |y| + m, d = 2 m, by
// non-restoring long division.  The quotient is below 128, so the partial remainder p stays in
// [-d, d) and each of the 7 steps is one (YW + 3)-bit adder: p's sign picks +d or -d (as d XOR
// the sign, plus a carry in), and the sign of the result is the restoring division's quotient bit.
// A compare, a subtract and a select at YW + 9 bits, as restoring division takes, is 2.5x the
// LUTs (Yosys, bench/bench_quantiser_lane.py).
template <int YW>
ap_uint<7> code_magnitude(ap_uint<YW> abs_y, ap_uint<YW> m) {
#pragma HLS INLINE
    typedef ap_int<YW + 3> rem_t;
    const ap_uint<YW + 8> n = (ap_uint<YW + 8>(abs_y) << 8) - (ap_uint<YW + 8>(abs_y) << 1) + m;
    const rem_t d = rem_t(m) << 1;
    rem_t p = rem_t(n >> 7);
    ap_uint<7> q = 0;
code_bits:
    for (int b = 6; b >= 0; b--) {
#pragma HLS UNROLL
        const bool subtract = p >= 0;
        const rem_t t = (p << 1) | rem_t(n[b]);
        p = t + (d ^ rem_t(subtract ? -1 : 0)) + rem_t(subtract);
        q[b] = p >= 0;
    }
    return q;
}

// Per-token output scale S = round(m * beta * 2**E / (127 * isqrt(max(sumsq / K, 1) * 4**guard))).
template <class N, class C>
ap_uint<N::scale_width> output_scale(ap_uint<C::y_width> m, ap_uint<C::sumsq_width> sumsq,
                                     ap_uint<C::beta_width> beta, unsigned cols) {
    ap_uint<C::sumsq_width> ms = sumsq / cols;
    if (ms == 0) ms = 1;
    const ap_uint<C::root_width> r = isqrt<C::root_width>(ap_uint<C::root_width>(ms) << (2 * N::rsqrt_guard));
    const int E = N::scale_exponent;
    const ap_uint<C::num_width> num = (ap_uint<C::num_width>(m) * beta) << (E > 0 ? E : 0);
    const ap_uint<C::num_width> den = (ap_uint<C::num_width>(r) * 127) << (E < 0 ? -E : 0);
    const ap_uint<C::num_width> s = (num + (den >> 1)) / den;
    const ap_uint<C::num_width> s_max = (ap_uint<C::num_width>(1) << N::scale_width) - 1;
    if (s > s_max) {
#ifndef __SYNTHESIS__
        count_saturation("scale");
#endif
        return ap_uint<N::scale_width>(s_max);
    }
    return ap_uint<N::scale_width>(s);
}

// Fused RMSNorm + per-token int8 quantiser, one token, QSIMD lanes per cycle. Pass 1: max|v*gamma|
// and sum v^2 (the RMS factor only sets the output scale); pass 2: the codes, shifted into a
// SIMD-wide packet a QSIMD-lane part per cycle, one packet written every SIMD / QSIMD cycles; then
// the output scale.  The MVU waits on these only in a single token's first row fold, so the
// quantiser may be narrower than the MVU; a max and an exact integer sum do not depend on order.
template <class N, class C, class GAMMA>
void quantise_token(const ap_int<C::in_width> v[][C::batch][C::cols], unsigned slot, unsigned t,
                    const GAMMA gamma[][C::cols], unsigned row, ap_uint<C::beta_width> beta, shape_t shape,
                    hls::stream<ap_uint<8 * C::simd> >& codes, hls::stream<ap_uint<N::scale_width> >& scale) {
#pragma HLS INLINE
    static_assert(C::qsimd >= 1 && C::simd % C::qsimd == 0, "the quantiser's lanes divide SIMD");
    const unsigned Q = C::qsimd, PARTS = C::simd / C::qsimd;    // PARTS: quantiser cycles per packet
    typedef ap_int<C::y_width> y_t;
    typedef ap_uint<C::y_width> mag_t;
    typedef ap_uint<8 * C::simd> packet_t;
    mag_t m = 0;
    ap_uint<C::sumsq_width> sumsq = 0;
quantise_stats:
    for (unsigned qf = 0; qf < shape.cols / Q; qf++) {
#pragma HLS LOOP_TRIPCOUNT max=C::cols / C::qsimd
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("quantise_stats");
        mag_t fold_max = 0;
        ap_uint<C::sumsq_width> fold_sumsq = 0;
    stats_lanes:
        for (unsigned s = 0; s < Q; s++) {
#pragma HLS UNROLL
            const unsigned k = qf * Q + s;
            HLSGEN_READ(v, slot, t, k);
            HLSGEN_READ(gamma, row, k);
            const y_t y = y_t(v[slot][t][k]) * ap_int<N::gamma_width>(gamma[row][k]);
            const mag_t mag = y < 0 ? mag_t(-y) : mag_t(y);
            if (mag > fold_max) fold_max = mag;
            fold_sumsq += ap_uint<C::sumsq_width>(ap_int<2 * C::in_width>(v[slot][t][k]) * v[slot][t][k]);
        }
        if (fold_max > m) m = fold_max;
        sumsq += fold_sumsq;
    }
#ifndef __SYNTHESIS__
    ap_int<8> traced[C::cols];
#endif
    packet_t packet = 0;
quantise_codes:
    for (unsigned qf = 0; qf < shape.cols / Q; qf++) {
#pragma HLS LOOP_TRIPCOUNT max=C::cols / C::qsimd
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("quantise_codes");
        ap_uint<8 * C::qsimd> part;
    codes_lanes:
        for (unsigned s = 0; s < Q; s++) {
#pragma HLS UNROLL
            const unsigned k = qf * Q + s;
            HLSGEN_READ(v, slot, t, k);
            HLSGEN_READ(gamma, row, k);
            const y_t y = y_t(v[slot][t][k]) * ap_int<N::gamma_width>(gamma[row][k]);
            const mag_t mag = y < 0 ? mag_t(-y) : mag_t(y);
            const ap_uint<7> q = m == 0 ? ap_uint<7>(0) : code_magnitude<C::y_width>(mag, m);
            const ap_int<8> code = y < 0 ? ap_int<8>(-ap_int<8>(q)) : ap_int<8>(q);
            set_field<8>(part, s, ap_uint<8>(code));
#ifndef __SYNTHESIS__
            traced[k] = code;
#endif
        }
        // A part enters at the top and moves down a part per cycle: a shift register, no
        // multiplexer; after PARTS parts the first holds lanes 0 .. Q - 1.
        packet = PARTS == 1 ? packet_t(part) : packet_t((packet >> (8 * Q)) | (packet_t(part) << (8 * (C::simd - Q))));
        if (qf % PARTS == PARTS - 1) codes.write(packet);
    }
    HLSGEN_TRACE(trace_scope() + ".q", traced, shape.cols);
    // The scale after the codes: the MVU starts on the codes while the square root and the
    // divider run (only rescale waits for the scale; the sums FIFO holds a matrix's rows).
    const ap_uint<N::scale_width> s = output_scale<N, C>(m, sumsq, beta, shape.cols);
    scale.write(s);
    HLSGEN_TRACE(trace_scope() + ".scale", &s, 1);
}

// The quantiser of a call: its n tokens one after another (codes, then scale, per token). The
// input is v[slot][t], the norm weights gamma[row]: whole arrays and indices, partitioned where
// they are declared (the top), as the planner's port budget says (hlsgen/hardware/memories.py).
template <class N, class C, class GAMMA>
void quantise(const ap_int<C::in_width> v[][C::batch][C::cols], unsigned slot, const GAMMA gamma[][C::cols],
              unsigned row, ap_uint<C::beta_width> beta, shape_t shape, unsigned n,
              hls::stream<ap_uint<8 * C::simd> >& codes, hls::stream<ap_uint<N::scale_width> >& scale) {
quantise_tokens:
    for (unsigned t = 0; t < n; t++) {
#pragma HLS LOOP_TRIPCOUNT max=C::batch
        quantise_token<N, C>(v, slot, t, gamma, row, beta, shape, codes, scale);
    }
}

// How weight words hold the codes (a config's `packing`): PACK_2BIT, lane j of a fold at a fixed
// bit slice of a word; PACK_5TRIT, each stripe's codes of consecutive folds run on five per byte
// (byte = sum((c_k + 1) * 3**k)), 320 per word, each matrix from a word boundary.
enum packing_t { PACK_2BIT = 0, PACK_5TRIT = 1 };

static const int TRITS_PER_WORD = 320;
typedef ap_uint<2 * TRITS_PER_WORD> trit_word_t;   // one word decoded to 2-bit codes

// Five 2-bit codes of one byte: base-3 digits t_k, code = t_k - 1 (0 -> 0b11, 1 -> 0, 2 -> 0b01).
// Bytes above 242 only pad a word's tail and are never streamed.
inline ap_uint<10> decode_trits(ap_uint<8> byte) {
#pragma HLS INLINE
    ap_uint<8> rest = byte;
    ap_uint<10> codes = 0;
trits_digits:
    for (int k = 0; k < 5; k++) {
#pragma HLS UNROLL
        const ap_uint<2> t = rest % 3;
        rest /= 3;
        set_field<2>(codes, k, ap_uint<2>(t == 0 ? 3 : (t == 2 ? 1 : 0)));
    }
    return codes;
}

inline trit_word_t decode_trit_word(weight_word_t word) {
#pragma HLS INLINE
    trit_word_t codes;
trits_bytes:
    for (int b = 0; b < 64; b++) {
#pragma HLS UNROLL
        set_field<10>(codes, b, decode_trits(get_field<8>(word, b)));
    }
    return codes;
}

constexpr unsigned gcd(unsigned a, unsigned b) { return b == 0 ? a : gcd(b, a % b); }
constexpr int unsigned_bits(unsigned v) { return v < 2 ? 1 : 1 + unsigned_bits(v >> 1); }   // to hold v

// The lane words of one matrix, where the streamer reads them and how many: a matrix starts at a
// word boundary; 2-bit folds narrower than a word share it, 5-trit folds run on over words.
template <class C>
struct matrix_words {
    typedef fold_parts<C::pe * C::simd> fold_t;
    static unsigned base(unsigned layer, shape_t shape) { return shape.base_word + layer * shape.words_per_matrix; }
    static unsigned folds(shape_t shape) { return shape.rows / C::pe * (shape.cols / C::simd); }
    static unsigned count(shape_t shape) {
        const unsigned part = fold_t::PART_BITS / 2;     // codes per stripe per fold
        return C::packing == PACK_5TRIT ? (folds(shape) * part + TRITS_PER_WORD - 1) / TRITS_PER_WORD
                                        : (folds(shape) + 512 / fold_t::PART_BITS - 1) / (512 / fold_t::PART_BITS);
    }
};

// The burst reader: every word of the matrix from every stripe, one per cycle, in an unconditional
// loop at affine addresses (UG1399's preconditions for burst inference), into a FIFO per stripe.
// Whatever depends on the data (the 5-trit decode, which fold needs a new word) comes after it.
template <class C, class SRC>
void read_matrix(SRC src, unsigned layer, shape_t shape, raw_stream_t raw[C::stripes]) {
#pragma HLS INLINE
    const unsigned base = matrix_words<C>::base(layer, shape), words = matrix_words<C>::count(shape);
read_words:
    for (unsigned w = 0; w < words; w++) {
#pragma HLS LOOP_TRIPCOUNT max=C::rows / C::pe * (C::cols / C::simd)
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("read_words");
    read_stripes:
        for (unsigned s = 0; s < C::stripes; s++) {
#pragma HLS UNROLL
            raw[s].write(fetch_stripe(src, base + w, s));
        }
    }
}

template <class C, int PACKING>
struct unpack_matrix;

// 2-bit packing: a fold of fewer than 256 lanes takes a slice of a 512-bit word, a wider one a
// word from every stripe.
template <class C>
struct unpack_matrix<C, PACK_2BIT> {
    static void run(shape_t shape, raw_stream_t raw[C::stripes], lane_stream_t<C> lanes[C::stripes]) {
#pragma HLS INLINE
        typedef fold_parts<C::pe * C::simd> fold_t;
        const unsigned LANES_PER_WORD = 512 / fold_t::PART_BITS;
        weight_word_t words[fold_t::PARTS];
#pragma HLS ARRAY_PARTITION variable=words complete
    unpack_2bit_folds:
        for (unsigned i = 0; i < matrix_words<C>::folds(shape); i++) {
#pragma HLS LOOP_TRIPCOUNT max=C::rows / C::pe * (C::cols / C::simd)
#pragma HLS PIPELINE II=1
            const unsigned lane = i % LANES_PER_WORD;
        unpack_2bit_stripes:
            for (int s = 0; s < fold_t::PARTS; s++) {
#pragma HLS UNROLL
                if (lane == 0) words[s] = pop(raw[s], "weights.raw");
                lanes[s].write(lane_part_t<C>(words[s] >> (fold_t::PART_BITS * lane)));
            }
        }
    }
};

// 5-trit packing: each stripe decodes a word into 320 codes; a fold's part starts at code
// (i * PART) mod 320 of the word `lo` and may run into the next, `hi` (PART <= 256 < 320, so a
// fold needs at most one word it does not hold yet: one FIFO read per cycle).  The starts are
// multiples of G = gcd(PART, 320), so the window shifts by `unit` * G codes, unit < 320 / G:
// a multiplexer of the offsets that occur, not a full barrel shifter.
template <class C>
struct unpack_matrix<C, PACK_5TRIT> {
    static void run(shape_t shape, raw_stream_t raw[C::stripes], lane_stream_t<C> lanes[C::stripes]) {
#pragma HLS INLINE
        typedef fold_parts<C::pe * C::simd> fold_t;
        const unsigned PART = fold_t::PART_BITS / 2;
        const unsigned G = gcd(PART, TRITS_PER_WORD), UNITS = TRITS_PER_WORD / G, STEP = PART / G;
        trit_word_t lo[fold_t::PARTS], hi[fold_t::PARTS];
#pragma HLS ARRAY_PARTITION variable=lo complete
#pragma HLS ARRAY_PARTITION variable=hi complete
    clear_words:
        for (int s = 0; s < fold_t::PARTS; s++) {
#pragma HLS UNROLL
            lo[s] = 0;      // never read before a word lands, but a defined start reads better in waves
            hi[s] = 0;
        }
        ap_uint<unsigned_bits(UNITS - 1)> unit = 0;   // the fold's first code in lo, in G codes
        bool lo_valid = false;                         // false at a word's first fold
    unpack_5trit_folds:
        for (unsigned i = 0; i < matrix_words<C>::folds(shape); i++) {
#pragma HLS LOOP_TRIPCOUNT max=C::rows / C::pe * (C::cols / C::simd)
#pragma HLS PIPELINE II=1
            const ap_uint<unsigned_bits(UNITS + STEP)> end = unit + STEP;
            const bool spans = end > UNITS;            // runs past lo: needs the next word in hi
        unpack_5trit_stripes:
            for (int s = 0; s < fold_t::PARTS; s++) {
#pragma HLS UNROLL
                if (!lo_valid || spans) {
                    const trit_word_t word = decode_trit_word(pop(raw[s], "weights.raw"));
                    if (lo_valid) hi[s] = word; else lo[s] = word;
                }
                const ap_uint<4 * TRITS_PER_WORD> window = (ap_uint<4 * TRITS_PER_WORD>(hi[s]) << (2 * TRITS_PER_WORD)) | lo[s];
                lanes[s].write(lane_part_t<C>(window >> (2 * G * unit)));
                if (end >= UNITS) lo[s] = hi[s];       // the next fold starts in hi (or in the next word)
            }
            if (end >= UNITS) {
                lo_valid = spans;
                unit = end - UNITS;
            } else {
                lo_valid = true;
                unit = end;
            }
        }
    }
};

// Streams the weight lanes of matrix `layer` in the order the MVU consumes them, as C::packing
// lays them out: the burst reader and the decoder in DATAFLOW, a FIFO of raw words per stripe
// between them. (The generated top runs the same two over a whole call as two processes of its
// own DATAFLOW, so that they do not restart per matrix; the kernel tests use this one.)
template <class C, class SRC>
void stream_weights(SRC src, unsigned layer, shape_t shape, lane_stream_t<C> lanes[C::stripes]) {
    static_assert(fold_parts<C::pe * C::simd>::PARTS == int(C::stripes), "one lane stream per weight stripe");
#pragma HLS DATAFLOW
    raw_stream_t raw[C::stripes];
    HLSGEN_NAME_STREAMS(raw, "weights.raw")
    HLSGEN_DATAFLOW_BEGIN("stream_weights")
    HLSGEN_PROCESS(read_matrix<C>(src, layer, shape, raw));
    HLSGEN_PROCESS(unpack_matrix<C, C::packing>::run(shape, raw, lanes));
    HLSGEN_DATAFLOW_END()
#ifndef __SYNTHESIS__
    for (unsigned s = 0; s < C::stripes; s++) check_drained(raw[s], "weights.raw");
#endif
}

// Sum of N ternary terms as a balanced adder tree (N is a power of two).
template <int N, int W>
struct adder_tree {
    static ap_int<W> sum(const ap_int<9>* terms) {
#pragma HLS INLINE
        return adder_tree<N / 2, W>::sum(terms) + adder_tree<N / 2, W>::sum(terms + N / 2);
    }
};
template <int W>
struct adder_tree<1, W> {
    static ap_int<W> sum(const ap_int<9>* terms) { return terms[0]; }
};

// A call's per-token registers (accumulators, scales) as a rotating chain: position 0 always holds
// the token in hand. After it, position n - 1 takes `value` and the others move down one, so the
// next token comes to position 0: each register picks one of two sources, not one of n.
template <int B, class T>
void rotate(T chain[B], T value, unsigned n) {
#pragma HLS INLINE
rotate_positions:
    for (int k = 0; k < B; k++) {
#pragma HLS UNROLL
        chain[k] = unsigned(k + 1) == n ? value : (k + 1 < B ? chain[k + 1] : chain[k]);
    }
}

// The ternary matrix-vector unit: PE rows x SIMD columns per cycle, adds and subtracts only, on the
// n tokens of a call.  Each weight lane is popped once and used for all n tokens (the tokens are
// the innermost loop), so a call of n tokens reads the weights once.  The input vectors are
// buffered: one token's codes straight from the quantiser during the first row fold; several
// tokens' codes (which arrive token after token) loaded first.
template <class C>
void mvu(shape_t shape, unsigned n, hls::stream<ap_uint<8 * C::simd> >& codes, lane_stream_t<C> weights[C::stripes],
         hls::stream<ap_uint<C::pe * C::acc_width> >& sums) {
    static_assert((C::pe & (C::pe - 1)) == 0 && (C::simd & (C::simd - 1)) == 0, "PE and SIMD are powers of two");
    // |sum| <= 127 * cols must fit a signed acc_width-bit accumulator.
    static_assert(127ULL * C::cols < (1ULL << (C::acc_width - 1)), "accumulator too narrow");
    typedef ap_int<C::acc_width> acc_t;
    const unsigned SF = shape.cols / C::simd;
    ap_uint<8 * C::simd> input_buffer[C::batch * (C::cols / C::simd)];   // token t's fold sf at t * SF + sf
    acc_t acc[C::pe][C::batch];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
    HLSGEN_LAYOUT(input_buffer, (std::string(C::name) + "_mvu_input").c_str(), 0, 0, 0, 0);   // one bank
    const bool direct = n == 1;
    if (!direct) {
    mvu_load:
        for (unsigned i = 0; i < n * SF; i++) {
#pragma HLS LOOP_TRIPCOUNT max=C::batch * (C::cols / C::simd)
#pragma HLS PIPELINE II=1
            HLSGEN_ITERATION("mvu_load");
            HLSGEN_WRITE(input_buffer, i);
            input_buffer[i] = pop(codes, "mvu.codes");
        }
    }
    unsigned sf = 0, t = 0, at = 0;    // at = t * SF + sf, kept by additions
    bool first_fold = true;
    lane_part_t<C> w[C::stripes];     // the fold's codes, a part per stripe
#pragma HLS ARRAY_PARTITION variable=w complete
mvu_fold:
    for (unsigned i = 0; i < shape.rows / C::pe * SF * n; i++) {
#pragma HLS LOOP_TRIPCOUNT max=C::rows / C::pe * (C::cols / C::simd) * C::batch
#pragma HLS PIPELINE II=1
        HLSGEN_ITERATION("mvu_fold");
        ap_uint<8 * C::simd> x;
        if (direct && first_fold) {
            x = pop(codes, "mvu.codes");
            HLSGEN_WRITE(input_buffer, sf);
            input_buffer[sf] = x;
        } else {
            HLSGEN_READ(input_buffer, at);
            x = input_buffer[at];
        }
        if (t == 0) {
        mvu_parts:
            for (unsigned s = 0; s < C::stripes; s++) {
#pragma HLS UNROLL
                w[s] = pop(weights[s], "mvu.weights");
            }
        }
        ap_uint<C::pe * C::acc_width> packet;
    mvu_pe:
        for (unsigned pe = 0; pe < C::pe; pe++) {
#pragma HLS UNROLL
            ap_int<9> terms[C::simd];
#pragma HLS ARRAY_PARTITION variable=terms complete
        mvu_simd:
            for (unsigned s = 0; s < C::simd; s++) {
#pragma HLS UNROLL
                const ap_int<9> a = ap_int<8>(get_field<8>(x, s));
                const unsigned j = pe * C::simd + s;
                const ap_uint<2> c = get_field<2>(w[j / 256], j % 256);
                terms[s] = c == 1 ? a : (c == 3 ? ap_int<9>(-a) : ap_int<9>(0));   // select, never multiply
            }
            const acc_t sum = (sf == 0 ? acc_t(0) : acc[pe][0]) + adder_tree<C::simd, C::acc_width>::sum(terms);
            rotate<C::batch>(acc[pe], sum, n);
            set_field<C::acc_width>(packet, pe, ap_uint<C::acc_width>(sum));
        }
        if (sf == SF - 1) sums.write(packet);       // token t's row fold is complete
        if (++t < n) {
            at += SF;
        } else {
            t = 0;
            if (++sf == SF) {
                sf = 0;
                first_fold = false;
            }
            at = sf;
        }
    }
}

// out[t] = saturate(rshift_round(acc * S_t, scale_frac)): the sums arrive row fold by row fold,
// the tokens innermost; one packet of PE sums in and one packet of PE outputs out per cycle
// (n * rows / PE cycles), lane p in bits [p * act_width, (p + 1) * act_width) of token t's stream.
template <class N, class C, int DEPTH>
void rescale(shape_t shape, unsigned n, hls::stream<ap_uint<C::pe * C::acc_width> >& sums,
             hls::stream<ap_uint<N::scale_width> >& scale,
             hls::stream<ap_uint<C::pe * N::act_width>, DEPTH> out[][C::batch], unsigned k) {
    typedef ap_uint<N::scale_width> scale_t;
    scale_t scales[C::batch];
#pragma HLS ARRAY_PARTITION variable=scales complete
rescale_scales:
    for (unsigned t = 0; t < n; t++) {
#pragma HLS LOOP_TRIPCOUNT max=C::batch
        scales[t] = pop(scale, "rescale.scale");
    }
#ifndef __SYNTHESIS__
    std::vector<ap_int<N::act_width> > traced(n * shape.rows);
#endif
    unsigned t = 0, r = 0;
rescale_folds:
    for (unsigned i = 0; i < shape.rows / C::pe * n; i++) {
#pragma HLS LOOP_TRIPCOUNT max=C::rows / C::pe * C::batch
#pragma HLS PIPELINE II=1
        const ap_uint<C::pe * C::acc_width> packet = pop(sums, "rescale.sums");
        const scale_t s = scales[0];
        ap_uint<C::pe * N::act_width> outputs;
    rescale_lanes:
        for (unsigned p = 0; p < C::pe; p++) {
#pragma HLS UNROLL
            const ap_int<C::acc_width> acc = ap_int<C::acc_width>(get_field<C::acc_width>(packet, p));
            const ap_int<N::act_width> y =
                saturate<N::act_width>(rshift_round<N::scale_frac>(wide_t(acc) * s), "bitlinear");
            set_field<N::act_width>(outputs, p, ap_uint<N::act_width>(y));
#ifndef __SYNTHESIS__
            traced[t * shape.rows + r * C::pe + p] = y;
#endif
        }
        out[k][t].write(outputs);
        rotate<C::batch>(scales, s, n);
        if (++t == n) {
            t = 0;
            r++;
        }
    }
#ifndef __SYNTHESIS__
    for (unsigned token = 0; token < n; token++) HLSGEN_TRACE(trace_scope(), &traced[token * shape.rows], shape.rows);
#endif
}

// One BitLinear on the n tokens of a call, the projection `shape` on engine C: norm-folded
// quantiser, MVU and rescale in DATAFLOW; token t's input is v[slot][t], its norm weights
// gamma[row], its output stream out[k][t] (whole arrays and indices: the caller's single call site
// selects the projection by index). The weight lanes come from `lanes`, which the call's weight
// streamer (stream_weights, a process of its own) fills ahead of the compute, so the memory's
// latency and the work between the BitLinears overlap the weight transfer.
template <class N, class C, class GAMMA, int OUT_DEPTH>
void bitlinear(const ap_int<C::in_width> v[][C::batch][C::cols], unsigned slot, const GAMMA gamma[][C::cols],
               unsigned row, ap_uint<C::beta_width> beta, lane_stream_t<C> lanes[C::stripes], shape_t shape, unsigned n,
               hls::stream<ap_uint<C::pe * N::act_width>, OUT_DEPTH> out[][C::batch], unsigned k) {
#pragma HLS DATAFLOW
    hls::stream<ap_uint<8 * C::simd>, C::code_depth> codes;
    hls::stream<ap_uint<C::pe * C::acc_width>, C::sum_depth> sums;
    hls::stream<ap_uint<N::scale_width>, 2> scale;
    HLSGEN_NAME_STREAMS(codes, "bitlinear.codes")
    HLSGEN_NAME_STREAMS(sums, "bitlinear.sums")
    HLSGEN_NAME_STREAMS(scale, "bitlinear.scale")
    HLSGEN_DATAFLOW_BEGIN("bitlinear")
    HLSGEN_PROCESS(quantise<N, C>(v, slot, gamma, row, beta, shape, n, codes, scale));
    HLSGEN_PROCESS(mvu<C>(shape, n, codes, lanes, sums));
    HLSGEN_PROCESS(rescale<N, C>(shape, n, sums, scale, out, k));
    HLSGEN_DATAFLOW_END()
#ifndef __SYNTHESIS__
    check_drained(codes, "bitlinear.codes");
    check_drained(sums, "bitlinear.sums");
    check_drained(scale, "bitlinear.scale");
#endif
}

}  // namespace hlsgen

#endif
