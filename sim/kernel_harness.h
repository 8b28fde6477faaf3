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
    int gamma[C::cols] = {0};
    for (unsigned k = 0; k < shape.cols; k++) gamma[k] = (int)gamma_in.at(k);
    const ap_uint<C::beta_width> beta = (unsigned long long)c.scalar("beta");
    const unsigned layer = (unsigned)c.scalar("layer");
    const size_t T = tokens(v, shape.cols);
    values_t out;
    for (size_t first = 0; first < T; first += C::batch) {
        const unsigned n = (unsigned)std::min<size_t>(C::batch, T - first);
        static ap_int<C::in_width> x[C::batch][C::cols];
        for (unsigned t = 0; t < n; t++)
            for (unsigned k = 0; k < C::cols; k++) {
                const size_t at = (first + t) * shape.cols + k;
                x[t][k] = k < shape.cols && at < v.size() ? v[at] : 0;
            }
        hls::stream<ap_uint<C::pe * N::act_width> > y[C::batch];
        hls::stream<hlsgen::lanes_t<C::pe * C::simd> > lanes;
        HLSGEN_SCOPE("bitlinear");
        hlsgen::stream_weights<C>(weights, layer, shape, lanes);      // as the top's weight streamer does
        hlsgen::bitlinear<N, C>(x, gamma, beta, lanes, shape, n, y);
        for (unsigned t = 0; t < C::batch; t++) {
            if (t < n) collect_packed<N::act_width, C::pe>(y[t], shape.rows, out);
            hlsgen::check_drained(y[t], "harness.bitlinear.out");
        }
        hlsgen::check_drained(lanes, "bitlinear.weights");
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
void overfetch(hls::stream<hlsgen::lanes_t<C::pe * C::simd> >& lanes) {
    for (unsigned i = 0; i < C::rows / C::pe * (C::cols / C::simd) + 1; i++) lanes.write(hlsgen::lanes_t<C::pe * C::simd>());
}

// ----------------------------------------------------------------------------- elementwise kernels
// Each runs T tokens, T from the length of the first input; the recurrent state carries over.
// After each call the input streams must be empty: a kernel reads exactly its vector.
// E is the lanes per cycle: the streams carry packets of E act values.

// h [T, K], gamma [K] -> v [T, K]
template <class N, int K, int E>
void norm(const Case& c) {
    const values_t h = c.input("h");
    int gamma[K];
    load(gamma, c.input("gamma"), 0);
    values_t out;
    for (size_t t = 0; t < tokens(h, K); t++) {
        ap_int<N::act_width> x[K], v[K];
        load(x, h, t * K);
        hlsgen::norm<N, K, E>(x, gamma, v);
        append(out, v);
    }
    c.output("v", out);
}

// i, f, g [T, D], lower_bound [D] (sigmoid_frac), g_norm [D], state [D], sigmoid_table
//   -> o [T, D], state [T, D] (after each token)
template <class N, int D, int E>
void mlgru(const Case& c) {
    const values_t i = c.input("i"), f = c.input("f"), g = c.input("g"), table = c.input("sigmoid_table");
    const std::vector<int> sigmoid_table(table.begin(), table.end());
    int lower_bound[D], g_norm[D];
    load(lower_bound, c.input("lower_bound"), 0);
    load(g_norm, c.input("g_norm"), 0);
    ap_int<N::state_width> state[D];
    load(state, c.input("state"), 0);
    values_t o_out, state_out;
    for (size_t t = 0; t < tokens(i, D); t++) {
        hls::stream<ap_uint<E * N::act_width> > i_in, f_in, g_in;
        feed_packed<N::act_width, E>(i_in, i, t * D, D);
        feed_packed<N::act_width, E>(f_in, f, t * D, D);
        feed_packed<N::act_width, E>(g_in, g, t * D, D);
        ap_int<N::mix_width> o[D];
        hlsgen::mlgru<N, D, E>(i_in, f_in, g_in, lower_bound, g_norm, state, sigmoid_table.data(), o);
        hlsgen::check_drained(i_in, "harness.mlgru.i");
        hlsgen::check_drained(f_in, "harness.mlgru.f");
        hlsgen::check_drained(g_in, "harness.mlgru.g");
        append(o_out, o);
        append(state_out, state);
    }
    c.output("o", o_out);
    c.output("state", state_out);
}

// gate, up [T, I], sigmoid_table -> z [T, I]; the fused gate_proj streams the gate half first.
template <class N, int I, int E>
void glu(const Case& c) {
    const values_t gate = c.input("gate"), up = c.input("up"), table = c.input("sigmoid_table");
    const std::vector<int> sigmoid_table(table.begin(), table.end());
    values_t out;
    for (size_t t = 0; t < tokens(gate, I); t++) {
        hls::stream<ap_uint<E * N::act_width> > gate_up;
        feed_packed<N::act_width, E>(gate_up, gate, t * I, I);
        feed_packed<N::act_width, E>(gate_up, up, t * I, I);
        ap_int<N::mix_width> z[I];
        hlsgen::glu<N, I, E>(gate_up, sigmoid_table.data(), z);
        hlsgen::check_drained(gate_up, "harness.glu.gate_up");
        append(out, z);
    }
    c.output("z", out);
}

// h, delta [T, K] -> out [T, K]
template <class N, int K, int E>
void residual(const Case& c) {
    const values_t h = c.input("h"), delta = c.input("delta");
    values_t out;
    for (size_t t = 0; t < tokens(h, K); t++) {
        ap_int<N::act_width> x[K], y[K];
        load(x, h, t * K);
        hls::stream<ap_uint<E * N::act_width> > delta_in;
        feed_packed<N::act_width, E>(delta_in, delta, t * K, K);
        hlsgen::residual<N, K, E>(x, delta_in, y);
        hlsgen::check_drained(delta_in, "harness.residual.delta");
        append(out, y);
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
        ap_int<N::act_width> h[H];
        hlsgen::embed<N, V, H>(ap_uint<32>(t), words.data(), h);
        append(out, h);
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
        hls::stream<ap_uint<E * N::act_width> > logits_in;
        feed_packed<N::act_width, E>(logits_in, logits, t * V, V);
        const std::vector<int> unwritten(V, 0x5a5a5a5a);
        std::vector<hlsgen::int32_word_t> written = hlsgen::int32_words(unwritten.data(), V, 0x5a5a5a5a);
        index.push_back(as_int64(hlsgen::argmax<N, V, E>(logits_in, written.data())));
        hlsgen::check_drained(logits_in, "harness.argmax.logits");
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
    const values_t x = c.input("x"), table = c.input("sigmoid_table");
    const std::vector<int> sigmoid_table(table.begin(), table.end());
    values_t y;
    for (long long value : x) y.push_back(as_int64(hlsgen::sigmoid<N, int>(value, sigmoid_table.data())));
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
