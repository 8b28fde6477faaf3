// hlsgen kernel library: shared helpers (rounding, saturation, stream checks, csim tracing).
// Every rounding here is the one hlsgen/model/numerics.py defines; the two must stay identical.
#ifndef HLSGEN_COMMON_H
#define HLSGEN_COMMON_H

// Vitis HLS takes ap_int widths up to 4096 bits when told before ap_int.h (UG1399); the widest
// types here are the MVU's packets, which the planner keeps within it (wider weight lanes are
// split into 512-bit parts, one stream per stripe: hlsgen::fold_parts).
#ifndef AP_INT_MAX_W
#define AP_INT_MAX_W 4096
#endif
#include <ap_int.h>
#include <cstdint>   // uint64_t in the ROM fetch, under synthesis too

// Vitis (synthesis, and its own csim and cosim, which define __VITIS_HLS__) takes the tool's
// streams; a plain g++ csim hlsgen's own (hlsgen_stream.h: the same interface, plus the peak
// occupancy that check_depth compares with the declared depth).
#if defined(__SYNTHESIS__) || defined(__VITIS_HLS__) || defined(HLSGEN_VENDOR_STREAM)
#include <hls_stream.h>
#ifdef HLSGEN_DATAFLOW_THREADS
#error "HLSGEN_DATAFLOW_THREADS is a g++ csim mode of hlsgen's own streams (hlsgen_stream.h)"
#endif
#else
#include "hlsgen_stream.h"
#endif

#ifndef __SYNTHESIS__
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>
#endif

namespace hlsgen {

// The processes of a DATAFLOW region, written
//
//     HLSGEN_DATAFLOW_BEGIN("bitlinear")
//     HLSGEN_PROCESS(quantise<N, C>(..., codes, scale));
//     HLSGEN_PROCESS(mvu<C>(shape, n, codes, lanes, sums));
//     HLSGEN_DATAFLOW_END()
//
// are the plain calls, one after another, for synthesis and the default csim (BEGIN and END leave
// nothing, not even a `;`, so the region's body is the canonical form UG1399 asks for). Under
// -DHLSGEN_DATAFLOW_THREADS each process runs in a thread of its own and END waits for them all
// (hlsgen_stream.h: bounded FIFOs and the deadlock check). HLSGEN_NAME_STREAMS gives a stream or
// an array of streams the name csim messages use ("raw[1]").
#if defined(HLSGEN_DATAFLOW_THREADS) && !defined(__SYNTHESIS__)
#define HLSGEN_DATAFLOW_BEGIN(name) ::hlsgen::dataflow_region hlsgen_region_(name);
#define HLSGEN_PROCESS(...) hlsgen_region_.spawn(#__VA_ARGS__, [&]() { __VA_ARGS__; })
#define HLSGEN_DATAFLOW_END() hlsgen_region_.join();
#else
#define HLSGEN_DATAFLOW_BEGIN(name)
#define HLSGEN_PROCESS(...) __VA_ARGS__
#define HLSGEN_DATAFLOW_END()
#endif

#if !defined(__SYNTHESIS__) && defined(HLSGEN_STREAM_H)
template <typename T>
inline void name_streams(hls::stream<T>& s, const std::string& name) {
    s.set_name(name);
}
template <typename S, size_t N>
inline void name_streams(S (&streams)[N], const std::string& name) {
    for (size_t k = 0; k < N; k++) name_streams(streams[k], name + "[" + std::to_string(k) + "]");
}
#define HLSGEN_NAME_STREAMS(streams, name) ::hlsgen::name_streams(streams, name);
#else
#define HLSGEN_NAME_STREAMS(streams, name)
#endif

// Wide enough for every elementwise product; the planner proves the bounds (as int64 in numpy).
typedef ap_int<64> wide_t;

// x / 2**SHIFT rounded half up (arithmetic shift); a left shift when SHIFT < 0.
template <int SHIFT, bool LEFT = (SHIFT < 0)>
struct shift_round {
    static wide_t apply(wide_t x) { return (x + (wide_t(1) << (SHIFT - 1))) >> SHIFT; }
};
template <int SHIFT>
struct shift_round<SHIFT, true> {
    static wide_t apply(wide_t x) { return x << (-SHIFT); }
};
template <>
struct shift_round<0, false> {
    static wide_t apply(wide_t x) { return x; }
};
template <int SHIFT>
inline wide_t rshift_round(wide_t x) { return shift_round<SHIFT>::apply(x); }

// Field k of a word of packed W-bit fields, read and written with shifts. (.range() with a
// loop index trips g++ -O2 over the reversed-range branch of ap_private.h, a false
// -Waggressive-loop-optimizations that -Werror makes fatal; after unrolling both are wires.)
template <int W, int P>
inline ap_uint<W> get_field(const ap_uint<P>& word, unsigned k) {
#pragma HLS INLINE
    return ap_uint<W>(word >> (W * k));
}
template <int W, int P>
inline void set_field(ap_uint<P>& word, unsigned k, ap_uint<W> value) {
#pragma HLS INLINE
    const ap_uint<P> mask = ap_uint<P>(ap_uint<W>(-1)) << (W * k);
    word = (word & ~mask) | (ap_uint<P>(value) << (W * k));
}

#ifndef __SYNTHESIS__
// Saturation counts per named site, reported by the testbench (a silent wrap is a classic bug).
inline std::map<std::string, long long>& saturation_counts() {
    static std::map<std::string, long long> counts;
    return counts;
}
inline void count_saturation(const char* site) {
#ifdef HLSGEN_DATAFLOW_THREADS
    static std::mutex lock;              // the processes of a region count at once
    std::lock_guard<std::mutex> held(lock);
#endif
    saturation_counts()[site]++;
}
#endif

// Clamp to a signed WIDTH-bit range, counting clamps in csim.
template <int WIDTH>
inline ap_int<WIDTH> saturate(wide_t x, const char* site) {
    const wide_t hi = (wide_t(1) << (WIDTH - 1)) - 1;
    const wide_t lo = -(wide_t(1) << (WIDTH - 1));
    wide_t y = x > hi ? hi : (x < lo ? lo : x);
#ifndef __SYNTHESIS__
    if (y != x) count_saturation(site);
#else
    (void)site;
#endif
    return ap_int<WIDTH>(y);
}

// Reading an empty stream or leaving data behind is an error in csim, not a warning.
// `label` names the stream in the error (the open hls_stream.h keeps its name private).
template <typename T>
inline T pop(hls::stream<T>& s, const char* label) {
#pragma HLS INLINE
#if !defined(__SYNTHESIS__) && !defined(HLSGEN_DATAFLOW_THREADS)   // threads: the read waits
    if (s.empty()) {
        std::fprintf(stderr, "hlsgen csim error: read from empty stream '%s'\n", label);
        std::exit(3);
    }
#else
    (void)label;
#endif
    return s.read();
}

template <typename T>
inline void check_drained(hls::stream<T>& s, const char* label) {
#ifndef __SYNTHESIS__
    if (!s.empty()) {
        std::fprintf(stderr, "hlsgen csim error: stream '%s' holds %d unread values at the end of a call\n",
                     label, (int)s.size());
        std::exit(3);
    }
#else
    (void)s;
    (void)label;
#endif
}

// A FIFO between stages of a sequential region holds everything its writer produces before its
// reader starts; csim runs them in that order, so the peak it saw must fit the declared depth
// (hls::stream<T, DEPTH>), or the hardware would stall. Dataflow channels are not checked here:
// their processes overlap in hardware but not in csim.
template <typename T>
inline void check_depth(hls::stream<T>& s, const char* label) {
#if !defined(__SYNTHESIS__) && defined(HLSGEN_STREAM_H)
    if (s.declared_depth() > 0 && s.peak() > size_t(s.declared_depth())) {
        std::fprintf(stderr, "hlsgen csim error: stream '%s' held %d values at once, more than its depth %d\n",
                     label, (int)s.peak(), s.declared_depth());
        std::exit(3);
    }
#else
    (void)s;
    (void)label;
#endif
}

#if defined(HLSGEN_COUNT_ACCESSES) && defined(HLSGEN_DATAFLOW_THREADS)
#error "HLSGEN_COUNT_ACCESSES counts one process at a time: build it without HLSGEN_DATAFLOW_THREADS"
#endif
#if defined(HLSGEN_COUNT_ACCESSES) && !defined(__SYNTHESIS__)
// A csim build mode for the port budget (hlsgen/hardware/memories.py). The top registers every
// array of the budget with the layout the plan gave it (HLSGEN_LAYOUT: the copy dimension, the
// cyclic split and its factor, or the reshaped dimension); the kernels mark the start of each
// iteration of a pipelined loop (HLSGEN_ITERATION) and every element they read or write
// (HLSGEN_READ / HLSGEN_WRITE with the element's full index). Per iteration, the accesses that
// fall in one bank are counted, each distinct element read once and each distinct element written
// once (a reshaped array's element is its whole word); at the end the most any bank took in one
// iteration is printed per loop and array, for tests/test_memories.py to compare with the plan.
struct array_layout {
    std::string name;
    int copy_dim;      // 1: dim 1 holds whole copies (each its own banks), 0: none
    int split_dim;     // the cyclic split (1-based), 0: none
    int factor;        // its banks, 0: complete (one per index)
    int reshape_dim;   // a dim reshaped into one word (1-based), 0: none
};
struct access_counts {
    std::string loop;                                             // "": outside a pipelined iteration
    std::map<const void*, array_layout> arrays;
    typedef std::vector<long> key_t;
    std::map<std::string, std::map<key_t, std::set<key_t> > > now;   // array -> bank -> accesses
    std::map<std::string, std::vector<int> > worst;                  // "loop array" -> reads, writes, both
    void flush() {
        for (const auto& array : now)
            for (const auto& bank : array.second) {
                std::vector<int>& w = worst[(loop.empty() ? "(outside)" : loop) + " " + array.first];
                w.resize(3);
                int writes = 0;
                for (const key_t& access : bank.second) writes += int(access.back());
                const int seen[3] = {int(bank.second.size()) - writes, writes, int(bank.second.size())};
                for (int k = 0; k < 3; k++)
                    if (seen[k] > w[k]) w[k] = seen[k];
            }
        now.clear();
    }
    ~access_counts() {
        flush();
        for (const auto& w : worst)
            std::printf("accesses per bank per iteration: %s reads %d writes %d total %d\n", w.first.c_str(), w.second[0],
                        w.second[1], w.second[2]);
    }
};
inline access_counts& counts() {
    static access_counts c;
    return c;
}
// One iteration of a pipelined loop, from its declaration to the end of the loop body.
struct iteration_scope {
    explicit iteration_scope(const char* loop) {
        counts().flush();
        counts().loop = loop;
    }
    ~iteration_scope() {
        counts().flush();
        counts().loop.clear();
    }
};
inline void count_layout(const void* base, const char* name, int copy_dim, int split_dim, int factor, int reshape_dim) {
    counts().arrays[base] = array_layout{name, copy_dim, split_dim, factor, reshape_dim};
}
template <class... INDEX>
inline void count_access(bool write, const void* base, INDEX... index) {
    const auto found = counts().arrays.find(base);
    if (found == counts().arrays.end()) return;          // not an array of the budget
    const array_layout& a = found->second;
    const access_counts::key_t at{long(index)...};
    access_counts::key_t bank, element;
    if (a.copy_dim) bank.push_back(at[a.copy_dim - 1]);
    if (a.split_dim) bank.push_back(a.factor ? at[a.split_dim - 1] % a.factor : at[a.split_dim - 1]);
    for (size_t d = 0; d < at.size(); d++)
        if (int(d) + 1 != a.reshape_dim) element.push_back(at[d]);
    element.push_back(write);
    counts().now[a.name][bank].insert(element);
}
#define HLSGEN_LAYOUT(array, name, copy_dim, split_dim, factor, reshape_dim) \
    ::hlsgen::count_layout((const void*)(array), name, copy_dim, split_dim, factor, reshape_dim)
#define HLSGEN_ITERATION(loop) ::hlsgen::iteration_scope hlsgen_iteration_(loop)
#define HLSGEN_READ(array, ...) ::hlsgen::count_access(false, (const void*)(array), __VA_ARGS__)
#define HLSGEN_WRITE(array, ...) ::hlsgen::count_access(true, (const void*)(array), __VA_ARGS__)
#else
#define HLSGEN_LAYOUT(array, name, copy_dim, split_dim, factor, reshape_dim)
#define HLSGEN_ITERATION(loop)
#define HLSGEN_READ(array, ...)
#define HLSGEN_WRITE(array, ...)
#endif

#ifndef __SYNTHESIS__
// Per-stage dumps for divergence reports: records of (name, count, int64 values).
inline std::FILE*& trace_file() {
    static std::FILE* f = 0;
    return f;
}
template <typename T>
inline void trace(const std::string& name, const T* values, int count) {
    std::FILE* f = trace_file();
    if (!f) return;
#ifdef HLSGEN_DATAFLOW_THREADS
    static std::mutex lock;              // a record at a time (each tensor's records keep their order)
    std::lock_guard<std::mutex> held(lock);
#endif
    int len = (int)name.size();
    std::fwrite(&len, sizeof(len), 1, f);
    std::fwrite(name.data(), 1, len, f);
    std::fwrite(&count, sizeof(count), 1, f);
    for (int k = 0; k < count; k++) {
        int64_t v = (int64_t)values[k].to_int64();
        std::fwrite(&v, sizeof(v), 1, f);
    }
}
// The name under which the kernels running now dump their tensors (set by the top function).
inline std::string& trace_scope() {
    static std::string scope;
    return scope;
}
#define HLSGEN_TRACE(name, values, count) ::hlsgen::trace(name, values, count)
#define HLSGEN_SCOPE(name) (::hlsgen::trace_scope() = (name))
#else
#define HLSGEN_TRACE(name, values, count)
#define HLSGEN_SCOPE(name)
#endif

}  // namespace hlsgen

#endif
