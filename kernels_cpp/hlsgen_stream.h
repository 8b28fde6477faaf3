// hlsgen kernel library: hls::stream for C simulation, written for hlsgen (no vendor code).
//
// Synthesis uses the tool's own <hls_stream.h> (hlsgen_common.h picks); csim uses this one. It
// keeps the interface the kernels use, as UG1399 documents it: hls::stream<T, DEPTH> with the FIFO
// depth in the type (DEPTH 0: not given, the tool's default), read / write / empty / full / size,
// read_nb / write_nb and the << >> operators; a stream<T, DEPTH> is a stream<T>, so a function
// taking hls::stream<T>& accepts any depth.
//
// A csim runs the processes of a region one after another, so a FIFO holds at a time what its
// writer produces before its reader starts. In a sequential region that is what the hardware FIFO
// must hold too (or the writer stalls forever): every stream records its peak occupancy, and
// hlsgen::check_depth (hlsgen_common.h) fails a run whose peak exceeds the declared depth.
#ifndef HLSGEN_STREAM_H
#define HLSGEN_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

template <typename T, int DEPTH = 0>
class stream;

template <typename T>
class stream<T, 0> {
public:
    stream() : depth_(0), peak_(0) {}
    explicit stream(const char* name) : name_(name), depth_(0), peak_(0) {}
    stream(const stream&) = delete;             // a FIFO is a place, never a value
    stream& operator=(const stream&) = delete;

    bool empty() const { return fifo_.empty(); }
    // An undeclared depth is unbounded here; a declared one bounds full() and write_nb().
    bool full() const { return depth_ > 0 && fifo_.size() >= size_t(depth_); }
    size_t size() const { return fifo_.size(); }

    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "hls::stream '%s': read while empty (a hardware FIFO would stall forever)\n",
                         name_.c_str());
            std::exit(3);
        }
        T value = fifo_.front();
        fifo_.pop_front();
        return value;
    }
    void read(T& value) { value = read(); }
    bool read_nb(T& value) {
        if (fifo_.empty()) return false;
        value = read();
        return true;
    }
    void write(const T& value) {
        fifo_.push_back(value);
        if (fifo_.size() > peak_) peak_ = fifo_.size();
    }
    bool write_nb(const T& value) {
        if (full()) return false;
        write(value);
        return true;
    }
    void operator>>(T& value) { value = read(); }
    void operator<<(const T& value) { write(value); }

    // csim only: the declared depth (0: none) and the most values held at once so far.
    int declared_depth() const { return depth_; }
    size_t peak() const { return peak_; }
    const std::string& name() const { return name_; }

protected:
    std::string name_;
    int depth_;

private:
    std::deque<T> fifo_;
    size_t peak_;
};

template <typename T, int DEPTH>
class stream : public stream<T, 0> {
    static_assert(DEPTH > 0, "a stream depth is positive");

public:
    stream() { this->depth_ = DEPTH; }
    explicit stream(const char* name) : stream<T, 0>(name) { this->depth_ = DEPTH; }
};

}  // namespace hls

#endif
