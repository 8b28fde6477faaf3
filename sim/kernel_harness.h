// Drivers for the kernel tests (sim/kernel_harness.py): each runs one kernel of kernels_cpp/ on the
// inputs of one case directory and writes its outputs there, as int64 arrays. Not part of any
// generated project; the generated program (sim/kernel_program.cpp.j2) lists the instances.
//
// Case directory: in.<name>.bin (inputs) -> out.<name>.bin (outputs), trace.bin (the kernels'
// HLSGEN_TRACE records), saturations.txt ("site count" lines from hlsgen::saturation_counts()).
#ifndef HLSGEN_KERNEL_HARNESS_H
#define HLSGEN_KERNEL_HARNESS_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "hlsgen_bitlinear.h"
#include "hlsgen_mixers.h"

namespace harness {

typedef std::vector<long long> values_t;

inline long long as_int64(long long x) { return x; }
template <int W>
long long as_int64(const ap_int<W>& x) { return x.to_int64(); }
template <int W>
long long as_int64(const ap_uint<W>& x) { return (long long)x.to_uint64(); }

[[noreturn]] inline void fail(const std::string& message) {
    std::fprintf(stderr, "harness error: %s\n", message.c_str());
    std::exit(2);
}

class Case {
public:
    explicit Case(const std::string& dir) : dir_(dir) {}

    values_t input(const char* name) const {
        const std::string path = dir_ + "/in." + name + ".bin";
        std::ifstream f(path, std::ios::binary | std::ios::ate);
        if (!f) fail("missing input " + path);
        values_t values(size_t(f.tellg()) / sizeof(long long));
        f.seekg(0);
        f.read(reinterpret_cast<char*>(values.data()), values.size() * sizeof(long long));
        return values;
    }

    long long scalar(const char* name) const {
        const values_t values = input(name);
        if (values.size() != 1) fail(std::string("input ") + name + " is not a scalar");
        return values[0];
    }

    void output(const char* name, const values_t& values) const {
        const std::string path = dir_ + "/out." + name + ".bin";
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(long long));
        if (!f) fail("cannot write " + path);
    }

private:
    std::string dir_;
};

// The streams the kernels read and write carry packets of E signed W-bit values, lane 0 in the
// low bits, as rescale writes them. `feed_packed` pushes the whole packets among up to `count`
// values from `from` (a case may supply fewer on purpose: the kernel's read of the missing packet
// from an empty stream must fail); `collect_packed` unpacks.
template <int W, int E>
void feed_packed(hls::stream<ap_uint<E * W> >& s, const values_t& values, size_t from, size_t count) {
    for (size_t k = from; k + E <= from + count && k + E <= values.size(); k += E) {
        ap_uint<E * W> packet = 0;
        for (int p = 0; p < E; p++) hlsgen::set_field<W>(packet, p, ap_uint<W>(ap_int<W>(values[k + p])));
        s.write(packet);
    }
}

template <int W, int E>
void collect_packed(hls::stream<ap_uint<E * W> >& s, int count, values_t& out) {
    for (int k = 0; k < count / E; k++) {
        const ap_uint<E * W> packet = hlsgen::pop(s, "harness.out");
        for (int p = 0; p < E; p++) out.push_back(as_int64(ap_int<W>(hlsgen::get_field<W>(packet, p))));
    }
}

template <class T, int N>
void load(T (&array)[N], const values_t& values, size_t from) {
    if (from + N > values.size()) fail("an input is shorter than the kernel's array");
    for (int k = 0; k < N; k++) array[k] = T(values[from + k]);
}

template <class T, int N>
void append(values_t& out, const T (&array)[N]) {
    for (int k = 0; k < N; k++) out.push_back(as_int64(array[k]));
}

// Tokens in an input of `width` values each; a partial last token counts (the stream-safety
// tests starve a kernel that way).
inline size_t tokens(const values_t& values, size_t width) { return (values.size() + width - 1) / width; }

// ----------------------------------------------------------------------------- BitLinear
// Inputs: shape [rows, cols, words_per_matrix] (at most the engine's), v [T, cols], gamma [cols],
// beta, layer, words [matrices * words_per_matrix * 8 * stripes] (uint64).
// Output: out [T, rows]; the kernels trace "bitlinear", "bitlinear.q" and "bitlinear.scale" per token.
// The tokens go in calls of up to C::batch, each on one pass of the weight streamer (as the top's
// streamer does): the drain check after each call shows the MVU took exactly one pass.
template <class N, class C, class SOURCE>
void run_bitlinear(const Case& c, SOURCE weights) {
    const values_t dims = c.input("shape");
    const hlsgen::shape_t shape = {(unsigned)dims.at(0), (unsigned)dims.at(1), (unsigned)dims.at(2), 0};
    if (shape.rows > C::rows || shape.cols > C::cols) fail("the case's shape is larger than its engine");
    const values_t v = c.input("v");
    const values_t gamma_in = c.input("gamma");
    int gamma[1][C::cols] = {{0}};
    for (unsigned k = 0; k < shape.cols; k++) gamma[0][k] = (int)gamma_in.at(k);
    const ap_uint<C::beta_width> beta = (unsigned long long)c.scalar("beta");
    const unsigned layer = (unsigned)c.scalar("layer");
    const size_t T = tokens(v, shape.cols);
    values_t out;
    for (size_t first = 0; first < T; first += C::batch) {
        const unsigned n = (unsigned)std::min<size_t>(C::batch, T - first);
        static ap_int<C::in_width> x[1][C::batch][C::cols];
        for (unsigned t = 0; t < n; t++)
            for (unsigned k = 0; k < C::cols; k++) {
                const size_t at = (first + t) * shape.cols + k;
                x[0][t][k] = k < shape.cols && at < v.size() ? v[at] : 0;
            }
        // Outputs as deep as the engine's rows: what a sequential caller must hold (check_depth).
        hls::stream<ap_uint<C::pe * N::act_width>, C::rows / C::pe> y[1][C::batch];
        hlsgen::lane_stream_t<C> lanes[C::stripes];
        HLSGEN_NAME_STREAMS(lanes, "harness.lanes")
        HLSGEN_SCOPE("bitlinear");
        // The weight streamer and the engine as two processes, as in the top (at once under
        // -DHLSGEN_DATAFLOW_THREADS, one after another in the default csim).
        HLSGEN_DATAFLOW_BEGIN("harness.bitlinear")
        HLSGEN_PROCESS(hlsgen::stream_weights<C>(weights, layer, shape, lanes));
        HLSGEN_PROCESS(hlsgen::bitlinear<N, C>(x, 0, gamma, 0, beta, lanes, shape, n, y, 0));
        HLSGEN_DATAFLOW_END()
        for (unsigned t = 0; t < C::batch; t++) {
            hlsgen::check_depth(y[0][t], "harness.bitlinear.out");
            if (t < n) collect_packed<N::act_width, C::pe>(y[0][t], shape.rows, out);
            hlsgen::check_drained(y[0][t], "harness.bitlinear.out");
        }
        for (unsigned s = 0; s < C::stripes; s++) hlsgen::check_drained(lanes[s], "bitlinear.weights");
    }
    c.output("out", out);
}

// On-chip ROM: uint64_t [words][8 * stripes], as the generated weights header declares it.
template <class N, class C>
void bitlinear_rom(const Case& c) {
    const values_t words = c.input("words");
    const std::vector<uint64_t> rom(words.begin(), words.end());
    run_bitlinear<N, C>(c, reinterpret_cast<const uint64_t(*)[8 * C::stripes]>(rom.data()));
}

// m_axi ports: one vector of 512-bit words per stripe, as the generated testbench passes them.
template <class N, class C>
void bitlinear_axi(const Case& c) {
    const values_t words = c.input("words");
    const size_t chunks = 8 * C::stripes, count = words.size() / chunks;
    std::vector<std::vector<hlsgen::weight_word_t> > ports(C::stripes, std::vector<hlsgen::weight_word_t>(count));
    hlsgen::weight_stripes<C::stripes> stripes;
    for (unsigned s = 0; s < C::stripes; s++) {
        for (size_t w = 0; w < count; w++)
            for (int k = 0; k < 8; k++) hlsgen::set_field<64>(ports[s][w], k, (uint64_t)words[chunks * w + 8 * s + k]);
        stripes.port[s] = ports[s].data();
    }
    run_bitlinear<N, C>(c, stripes);
}

// A weight streamer with an off-by-one (zero lanes, and one too many): the program specialises
// hlsgen::stream_weights with it for an "overfetching" config, to show that bitlinear fails when a
// stream still holds data at the end of the call.
template <class C>
void overfetch(hlsgen::lane_stream_t<C> lanes[C::stripes]) {
    for (unsigned i = 0; i < C::rows / C::pe * (C::cols / C::simd) + 1; i++)
        for (unsigned s = 0; s < C::stripes; s++) lanes[s].write(hlsgen::lane_part_t<C>(0));
}

// The sigmoid table as `copies` copies, as the generated weights header declares a stage's
// (hlsgen_math.h, sigmoid_copy): row-major [copies][entries].
inline std::vector<int> table_copies(const values_t& table, int copies) {
    std::vector<int> rows;
    for (int c = 0; c < copies; c++) rows.insert(rows.end(), table.begin(), table.end());
    return rows;
}
template <class N>
const int (*as_copies(const std::vector<int>& rows))[N::sigmoid_entries] {
    if (rows.size() % N::sigmoid_entries) fail("the sigmoid table does not have sigmoid_entries entries");
    return reinterpret_cast<const int (*)[N::sigmoid_entries]>(rows.data());
}

// ----------------------------------------------------------------------------- elementwise kernels
// Each runs T tokens, T from the length of the first input; the recurrent state carries over.
// After each call the input streams must be empty: a kernel reads exactly its vector.
// E is the lanes per cycle: the streams carry packets of E act values.

// h [T, K], gamma [K] -> v [T, K]
template <class N, int K, int E>
void norm(const Case& c) {
    const values_t h = c.input("h");
    int gamma[1][K];
    load(gamma[0], c.input("gamma"), 0);
    values_t out;
    for (size_t t = 0; t < tokens(h, K); t++) {
        ap_int<N::act_width> x[1][K], v[1][1][K];
        load(x[0], h, t * K);
        hlsgen::norm<N, K, E>(x, 0, gamma, 0, v, 0);
        append(out, v[0][0]);
    }
    c.output("v", out);
}

// i, f, g [T, D], lower_bound [D] (sigmoid_frac), g_norm [D], state [D], sigmoid_table
//   -> o [T, D], state [T, D] (after each token)
template <class N, int D, int E>
void mlgru(const Case& c) {
    const values_t i = c.input("i"), f = c.input("f"), g = c.input("g");
    const std::vector<int> sigmoid_table = table_copies(c.input("sigmoid_table"), (3 * E + 1) / 2);
    int lower_bound[1][D], g_norm[1][D];
    load(lower_bound[0], c.input("lower_bound"), 0);
    load(g_norm[0], c.input("g_norm"), 0);
    ap_int<N::state_width> state[1][1][D];
    load(state[0][0], c.input("state"), 0);
    values_t o_out, state_out;
    for (size_t t = 0; t < tokens(i, D); t++) {
        hls::stream<ap_uint<E * N::act_width>, D / E> in[3][1];     // i, f, g
        feed_packed<N::act_width, E>(in[0][0], i, t * D, D);
        feed_packed<N::act_width, E>(in[1][0], f, t * D, D);
        feed_packed<N::act_width, E>(in[2][0], g, t * D, D);
        ap_int<N::mix_width> o[1][1][D];
        hlsgen::mlgru<N, D, E>(in, 0, 1, 2, 0, lower_bound, g_norm, 0, state, 0, as_copies<N>(sigmoid_table), o, 0);
        hlsgen::check_drained(in[0][0], "harness.mlgru.i");
        hlsgen::check_drained(in[1][0], "harness.mlgru.f");
        hlsgen::check_drained(in[2][0], "harness.mlgru.g");
        append(o_out, o[0][0]);
        append(state_out, state[0][0]);
    }
    c.output("o", o_out);
    c.output("state", state_out);
}

// gate, up [T, I], sigmoid_table -> z [T, I]; the fused gate_proj streams the gate half first.
template <class N, int I, int E>
void glu(const Case& c) {
    const values_t gate = c.input("gate"), up = c.input("up");
    const std::vector<int> sigmoid_table = table_copies(c.input("sigmoid_table"), (E + 1) / 2);
    values_t out;
    for (size_t t = 0; t < tokens(gate, I); t++) {
        hls::stream<ap_uint<E * N::act_width>, 2 * I / E> gate_up[1][1];
        feed_packed<N::act_width, E>(gate_up[0][0], gate, t * I, I);
        feed_packed<N::act_width, E>(gate_up[0][0], up, t * I, I);
        ap_int<N::mix_width> z[1][1][I];
        hlsgen::glu<N, I, E>(gate_up, 0, 0, as_copies<N>(sigmoid_table), z, 0);
        hlsgen::check_drained(gate_up[0][0], "harness.glu.gate_up");
        append(out, z[0][0]);
    }
    c.output("z", out);
}

// h, delta [T, K] -> out [T, K]
template <class N, int K, int E>
void residual(const Case& c) {
    const values_t h = c.input("h"), delta = c.input("delta");
    values_t out;
    for (size_t t = 0; t < tokens(h, K); t++) {
        ap_int<N::act_width> x[1][K], y[1][K];
        load(x[0], h, t * K);
        hls::stream<ap_uint<E * N::act_width>, K / E> delta_in[1][1];
        feed_packed<N::act_width, E>(delta_in[0][0], delta, t * K, K);
        hlsgen::residual<N, K, E>(x, 0, delta_in, 0, y);
        hlsgen::check_drained(delta_in[0][0], "harness.residual.delta");
        append(out, y[0]);
    }
    c.output("out", out);
}

// table [V * H] (row-major), token [T] -> h [T, H], from the off-chip table's words; the slots
// past the table (the buffer's padding) hold -1, which no row may pick up.
template <class N, int V, int H>
void embed(const Case& c) {
    const values_t table = c.input("table"), token = c.input("token");
    if (table.size() != size_t(V) * H) fail("embed: the table is not V x H");
    const std::vector<int> values(table.begin(), table.end());
    const std::vector<hlsgen::int32_word_t> words = hlsgen::int32_words(values.data(), values.size(), -1);
    values_t out;
    for (long long t : token) {
        ap_int<N::act_width> h[1][H];
        hlsgen::embed<N, V, H>(ap_uint<32>(t), words.data(), h, 0);
        append(out, h[0]);
    }
    c.output("h", out);
}

// logits [T, V] -> index [T], logits [T, V] and padding [T, slots past V] (as the kernel wrote
// them into its words, which start out filled with 0x5a5a5a5a so an unwritten slot shows)
template <class N, int V, int E>
void argmax(const Case& c) {
    const values_t logits = c.input("logits");
    values_t index, echo, padding;
    for (size_t t = 0; t < tokens(logits, V); t++) {
        hls::stream<ap_uint<E * N::act_width>, V / E> logits_in[1][1];
        feed_packed<N::act_width, E>(logits_in[0][0], logits, t * V, V);
        const std::vector<int> unwritten(V, 0x5a5a5a5a);
        std::vector<hlsgen::int32_word_t> written = hlsgen::int32_words(unwritten.data(), V, 0x5a5a5a5a);
        index.push_back(as_int64(hlsgen::argmax<N, V, E>(logits_in, 0, 0, written.data())));
        hlsgen::check_drained(logits_in[0][0], "harness.argmax.logits");
        for (size_t k = 0; k < written.size() * hlsgen::INT32_SLOTS; k++)
            (k < size_t(V) ? echo : padding).push_back(hlsgen::int32_slot(written.data(), k));
    }
    c.output("index", index);
    c.output("logits", echo);
    c.output("padding", padding);
}

// ----------------------------------------------------------------------------- math layer
// x [n] (act_frac), sigmoid_table -> y [n] (sigmoid_frac)
template <class N>
void sigmoid(const Case& c) {
    const values_t x = c.input("x");
    const std::vector<int> sigmoid_table = table_copies(c.input("sigmoid_table"), 1);
    values_t y;
    for (long long value : x) y.push_back(as_int64(hlsgen::sigmoid<N, int>(value, as_copies<N>(sigmoid_table), 0)));
    c.output("y", y);
}

// n [k] (uint64 bit patterns) -> root [k]
template <int W>
void isqrt(const Case& c) {
    values_t root;
    for (long long n : c.input("n")) root.push_back(as_int64(hlsgen::isqrt<W>(ap_uint<W>((unsigned long long)n))));
    c.output("root", root);
}

// abs_y, m [k] -> q [k]
template <int YW>
void code_magnitude(const Case& c) {
    const values_t abs_y = c.input("abs_y"), m = c.input("m");
    values_t q;
    for (size_t k = 0; k < abs_y.size(); k++)
        q.push_back(as_int64(hlsgen::code_magnitude<YW>(ap_uint<YW>(abs_y[k]), ap_uint<YW>(m[k]))));
    c.output("q", q);
}

// ----------------------------------------------------------------------------- the case loop
struct Entry {
    const char* name;
    void (*run)(const Case&);
};

inline void write_saturations(const std::string& dir) {
    std::ofstream f(dir + "/saturations.txt");
    for (const auto& site : hlsgen::saturation_counts()) f << site.first << " " << site.second << "\n";
}

// argv[1] lists one "entry directory" per line; each case starts with no saturations counted.
inline int run_cases(const Entry* entries, size_t count, int argc, char** argv) {
    if (argc != 2) fail("usage: program CASE_LIST");
    std::ifstream list(argv[1]);
    std::string name, dir;
    while (list >> name >> dir) {
        const Entry* entry = 0;
        for (size_t k = 0; k < count; k++)
            if (name == entries[k].name) entry = &entries[k];
        if (!entry) fail("unknown entry " + name);
        hlsgen::saturation_counts().clear();
        hlsgen::trace_file() = std::fopen((dir + "/trace.bin").c_str(), "wb");
        entry->run(Case(dir));
        std::fclose(hlsgen::trace_file());
        hlsgen::trace_file() = 0;
        write_saturations(dir);
    }
    return 0;
}

}  // namespace harness

#endif
