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
//
// Built with -DHLSGEN_DATAFLOW_THREADS (and -pthread), the processes of every DATAFLOW region run
// at once instead, each in a thread of its own (HLSGEN_PROCESS, hlsgen_common.h), and a stream
// behaves as the hardware FIFO between them: a write waits while DEPTH values are held, a read
// while none is (an undeclared depth, 0, stays unbounded). When every process is waiting, on a
// stream or on the end of the processes it started, and none of the conditions can come true, the
// run is deadlocked, as the hardware would be: it names the streams and exits 3.
//
// Why one run answers for every schedule: each stream has one writer and one reader, a process
// reads and writes in an order fixed by its own data alone, and a blocked access waits rather than
// guesses (empty / full / read_nb are not used between processes). Such a network is a Kahn
// process network; a FIFO bounded at D is the same network with a second, reverse channel that
// starts with D tokens ("room") which every write takes and every read gives back. The values on
// every channel, and so the point where each process stops for good, are the same whatever order
// the threads run in: a too-shallow FIFO deadlocks in every schedule, or in none.
#ifndef HLSGEN_STREAM_H
#define HLSGEN_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

#ifdef HLSGEN_DATAFLOW_THREADS
#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#endif

namespace hlsgen {

// What every csim stream shares whatever its payload: its name, declared depth and fill.
class fifo_base {
public:
    int declared_depth() const { return depth_; }   // 0: none
    const std::string& name() const { return name_; }
    void set_name(const std::string& name) { name_ = name; }

protected:
    fifo_base() : depth_(0), held_(0) {}
    bool has_room() const { return depth_ == 0 || held_ < size_t(depth_); }
    std::string name_;
    int depth_;
    size_t held_;          // values in the FIFO now
#ifdef HLSGEN_DATAFLOW_THREADS
    friend struct dataflow_scheduler;
    std::condition_variable data_, room_;   // a value arrived; a value left
#endif
};

#ifdef HLSGEN_DATAFLOW_THREADS
class dataflow_region;

// The one lock of all streams and regions, and what each waiting process waits for.
struct dataflow_scheduler {
    struct wait_t {
        std::string process;
        const fifo_base* fifo;          // for data (reading) or room (writing) on it, or
        bool writing;
        const int* running;             // for this count of child processes to reach 0
        const char* region;
    };
    std::mutex lock;
    int live = 1;                       // processes not finished, the main thread included
    std::vector<const wait_t*> waiting;

    static dataflow_scheduler& get() {
        static dataflow_scheduler scheduler;
        return scheduler;
    }
    static std::string& process() {     // the name of the process this thread runs
        thread_local std::string name = "main";
        return name;
    }
    static bool ready(const wait_t& w) {
        if (w.running) return *w.running == 0;
        return w.writing ? w.fifo->has_room() : w.fifo->held_ > 0;
    }
    static std::string describe(const wait_t& w) {
        const std::string name = w.fifo->name_.empty() ? "an unnamed stream" : "'" + w.fifo->name_ + "'";
        return name + (w.writing ? " full (depth " + std::to_string(w.fifo->depth_) + ")" : " empty") + " in " + w.process;
    }
    // Called with the lock held, after any change that may have freed a process or finished one:
    // a deadlock is every live process waiting, each on a condition that is false.
    void check() {
        if (int(waiting.size()) < live) return;
        for (const wait_t* w : waiting)
            if (ready(*w)) return;       // woken already, not yet running
        std::vector<std::string> streams;   // sorted: the same message whatever the schedule
        for (const wait_t* w : waiting)
            if (!w->running)               // a region waiting for its processes: they are listed
                streams.push_back(describe(*w));
        std::sort(streams.begin(), streams.end());
        std::string blocked;
        for (const std::string& stream : streams) blocked += (blocked.empty() ? "" : "; ") + stream;
        std::fflush(stdout);
        std::fprintf(stderr, "hlsgen csim error: dataflow deadlock: %s\n", blocked.c_str());
        std::fflush(stderr);
        std::_Exit(3);                    // the other threads wait forever: no destructors
    }
    // Wait on `cv` until `w` holds (the caller holds `held`, a lock of `lock`).
    void wait(std::unique_lock<std::mutex>& held, std::condition_variable& cv, wait_t& w) {
        if (ready(w)) return;
        w.process = process();
        waiting.push_back(&w);
        check();
        while (!ready(w)) cv.wait(held);
        for (size_t k = 0; k < waiting.size(); k++)
            if (waiting[k] == &w) {
                waiting.erase(waiting.begin() + k);
                break;
            }
    }
};

// The processes of one DATAFLOW region: spawn starts each in a thread, join waits for them all.
class dataflow_region {
public:
    explicit dataflow_region(const char* name) : name_(name), running_(0) {}
    dataflow_region(const dataflow_region&) = delete;
    dataflow_region& operator=(const dataflow_region&) = delete;
    ~dataflow_region() { join(); }

    // `call` is the process's call as written; its function's name names the thread.
    void spawn(const char* call, std::function<void()> body) {
        std::string name(call);
        name = name.substr(0, name.find_first_of("<( "));
        dataflow_scheduler& s = dataflow_scheduler::get();
        {
            std::lock_guard<std::mutex> held(s.lock);
            s.live++;
            running_++;
        }
        threads_.emplace_back([this, name, body, &s]() {
            dataflow_scheduler::process() = name;
            body();
            std::lock_guard<std::mutex> held(s.lock);
            s.live--;
            running_--;
            finished_.notify_all();
            s.check();
        });
    }
    void join() {
        dataflow_scheduler& s = dataflow_scheduler::get();
        {
            std::unique_lock<std::mutex> held(s.lock);
            dataflow_scheduler::wait_t w{"", nullptr, false, &running_, name_};
            s.wait(held, finished_, w);
        }
        for (std::thread& t : threads_) t.join();
        threads_.clear();
    }

private:
    const char* name_;
    int running_;                        // processes started and not finished
    std::condition_variable finished_;
    std::vector<std::thread> threads_;
};
#endif

}  // namespace hlsgen

namespace hls {

template <typename T, int DEPTH = 0>
class stream;

template <typename T>
class stream<T, 0> : public hlsgen::fifo_base {
public:
    stream() : peak_(0) {}
    explicit stream(const char* name) : peak_(0) { name_ = name; }
    stream(const stream&) = delete;             // a FIFO is a place, never a value
    stream& operator=(const stream&) = delete;

#ifndef HLSGEN_DATAFLOW_THREADS
    bool empty() const { return fifo_.empty(); }
    // An undeclared depth is unbounded here; a declared one bounds full() and write_nb().
    bool full() const { return !has_room(); }
    size_t size() const { return fifo_.size(); }

    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "hls::stream '%s': read while empty (a hardware FIFO would stall forever)\n",
                         name_.c_str());
            std::exit(3);
        }
        return take();
    }
    bool read_nb(T& value) {
        if (fifo_.empty()) return false;
        value = take();
        return true;
    }
    // The sequential csim never waits for room: the peak shows what the FIFO had to hold.
    void write(const T& value) { put(value); }
    bool write_nb(const T& value) {
        if (full()) return false;
        put(value);
        return true;
    }
#else
    bool empty() const { return size() == 0; }
    bool full() const {
        std::lock_guard<std::mutex> held(hlsgen::dataflow_scheduler::get().lock);
        return !has_room();
    }
    size_t size() const {
        std::lock_guard<std::mutex> held(hlsgen::dataflow_scheduler::get().lock);
        return fifo_.size();
    }
    // A read waits for a value and a write for room, as the hardware FIFO's processes do.
    T read() {
        hlsgen::dataflow_scheduler& s = hlsgen::dataflow_scheduler::get();
        std::unique_lock<std::mutex> held(s.lock);
        hlsgen::dataflow_scheduler::wait_t w{"", this, false, nullptr, nullptr};
        s.wait(held, data_, w);
        T value = take();
        room_.notify_one();
        return value;
    }
    bool read_nb(T& value) {
        std::lock_guard<std::mutex> held(hlsgen::dataflow_scheduler::get().lock);
        if (fifo_.empty()) return false;
        value = take();
        room_.notify_one();
        return true;
    }
    void write(const T& value) {
        hlsgen::dataflow_scheduler& s = hlsgen::dataflow_scheduler::get();
        std::unique_lock<std::mutex> held(s.lock);
        hlsgen::dataflow_scheduler::wait_t w{"", this, true, nullptr, nullptr};
        s.wait(held, room_, w);
        put(value);
        data_.notify_one();
    }
    bool write_nb(const T& value) {
        std::lock_guard<std::mutex> held(hlsgen::dataflow_scheduler::get().lock);
        if (!has_room()) return false;
        put(value);
        data_.notify_one();
        return true;
    }
#endif
    void read(T& value) { value = read(); }
    void operator>>(T& value) { value = read(); }
    void operator<<(const T& value) { write(value); }

    // csim only: the most values held at once so far.
    size_t peak() const { return peak_; }

private:
    T take() {
        T value = fifo_.front();
        fifo_.pop_front();
        held_--;
        return value;
    }
    void put(const T& value) {
        fifo_.push_back(value);
        held_++;
        if (held_ > peak_) peak_ = held_;
    }
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
