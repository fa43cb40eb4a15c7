// The simulated board's native harness: the Verilated `SimBoard` (verify/simboard.py) behind a
// TCP socket or a pseudo-terminal, with the clock loop in C++ (no Python per cycle).
//
//   board --listen socket:127.0.0.1:0|pty [--once] [--poll-cycles N (1024)] [--parent PID]
//
// Prints one line to stdout once it listens: the URL to open with pyserial
// (`socket://HOST:PORT` or the pty's device path). Logs go to stderr.
//
// Clock loop: each cycle offers the next host byte on `i` and takes a byte from `o`. The link is
// polled (without blocking) only every `--poll-cycles` cycles; when the chip has answered every
// request frame and no byte is waiting either way, the harness blocks in poll() and simulated
// time stands still, so an idle board costs no CPU.
//
// Sessions (socket only): one client at a time; a second one is refused (accepted and closed at
// once). When a client disconnects, the bytes it sent are still delivered, then a delimiter
// ends any partial frame it left in the chip's receiver, and the chip runs until every frame is
// answered; those replies are discarded. The next client finds the chip's state as the previous
// one left it, its receiver at a frame boundary and no one else's reply waiting: a board as a host
// finds it when it opens the port afresh.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vsimboard.h"
#include "verilated.h"

// SimBoard's stream ports `i` and `o` (Amaranth names them i__valid, ...; Verilator escapes a
// double underscore as ___05F).
#define IN_VALID i___05Fvalid
#define IN_PAYLOAD i___05Fpayload
#define IN_READY i___05Fready
#define OUT_VALID o___05Fvalid
#define OUT_PAYLOAD o___05Fpayload
#define OUT_READY o___05Fready

namespace {

constexpr uint8_t DELIMITER = 0x00;

// Set by SIGTERM: the loop ends at its next turn (poll() and send() return EINTR) and reports.
volatile sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }
// Far above the longest request (a TICK of 65535 steps of the default chip: about 30 M cycles).
constexpr uint64_t STUCK_CYCLES = uint64_t(1) << 31;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "board: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// Counts non-empty frames in a byte stream: the chip answers each with exactly one reply.
struct FrameCounter {
    uint64_t frames = 0;
    bool body = false;
    void feed(uint8_t byte) {
        if (byte == DELIMITER) {
            frames += body;
            body = false;
        } else {
            body = true;
        }
    }
};

// Bytes from the host not yet taken by the chip; consumed from the front.
struct ByteQueue {
    std::vector<uint8_t> data;
    size_t head = 0;
    bool empty() const { return head == data.size(); }
    uint8_t front() const { return data[head]; }
    void pop() {
        if (++head == data.size()) {
            data.clear();
            head = 0;
        }
    }
};

class Board {
public:
    // The board starts powered up: its registers hold their initial (= reset) values and it has
    // no reset input (spikefab.boards.sim._PoweredUpBoard).
    Board() : context_(new VerilatedContext), top_(new Vsimboard(context_.get())) {
        top_->IN_VALID = 0;
        top_->OUT_READY = 0;
        top_->clk = 1;
        top_->eval();
    }

    // Queue host bytes for the chip.
    void give(const uint8_t* bytes, size_t n) {
        for (size_t i = 0; i < n; i++) {
            to_chip_.data.push_back(bytes[i]);
            requests_.feed(bytes[i]);
        }
    }

    // Whether the chip still has work the host is waiting for: bytes to take, or frames to answer.
    // A chip that moved no byte for STUCK_CYCLES counts as idle (it would be a gateware bug: every
    // non-empty frame gets one reply), so a hung design does not burn the CPU forever; the host
    // then times out as with a silent board.
    bool busy() const {
        bool waiting = !to_chip_.empty() || replies_.frames < requests_.frames;
        return waiting && cycles_ - last_moved_ < STUCK_CYCLES;
    }

    // Run up to `n` clock cycles, moving at most one byte each way per cycle; reply bytes go to
    // `out`. Returns early once the chip has nothing left to do (every frame answered), so no
    // cycle is simulated for nobody and a lone request's reply leaves at once. (Returning at
    // every reply frame instead was measured no faster: the host keeps a window of requests
    // queued, so replies may wait for the end of the slice.)
    void run(uint64_t n, std::vector<uint8_t>& out) {
        auto start = std::chrono::steady_clock::now();
        top_->OUT_READY = 1;
        uint64_t c = 0;
        while (c < n) {
            // SimBoard's FIFOs drive `i.ready`, `o.valid` and `o.payload` from registers, so
            // their values after the last edge hold for the next one, whatever we offer now.
            bool offer = !to_chip_.empty();
            top_->IN_VALID = offer;
            if (offer) top_->IN_PAYLOAD = to_chip_.front();
            bool taken = offer && top_->IN_READY;
            bool sent = top_->OUT_VALID;
            uint8_t byte = top_->OUT_PAYLOAD;
            top_->clk = 0;
            top_->eval();
            top_->clk = 1;
            top_->eval();
            c++;
            if (taken) to_chip_.pop();
            if (sent) {
                out.push_back(byte);
                replies_.feed(byte);
            }
            if (taken || sent) last_moved_ = cycles_ + c;
            if (!taken && !sent && !busy()) break;
        }
        top_->IN_VALID = 0;
        cycles_ += c;
        clocked_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }

    // End whatever partial frame is in the receiver and run until every frame is answered;
    // the replies are dropped. Returns the cycles it took.
    uint64_t resynchronise() {
        uint8_t end = DELIMITER;
        give(&end, 1);
        uint64_t start = cycles_;
        std::vector<uint8_t> dropped;
        while (busy() && !stop_requested) {
            run(1024, dropped);
            dropped.clear();
        }
        return cycles_ - start;
    }

    uint64_t cycles() const { return cycles_; }

    // Wall-clock seconds spent in run() (the simulator's own speed is cycles() / this).
    double clocked_seconds() const { return clocked_; }

private:
    std::unique_ptr<VerilatedContext> context_;
    std::unique_ptr<Vsimboard> top_;
    ByteQueue to_chip_;
    FrameCounter requests_, replies_;
    uint64_t cycles_ = 0, last_moved_ = 0;
    double clocked_ = 0;
};

struct Options {
    std::string listen = "socket:127.0.0.1:0";
    bool once = false;
    uint64_t poll_cycles = 1024;
    pid_t parent = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        bool has_value = i + 1 < argc;
        if (arg == "--listen" && has_value) o.listen = argv[++i];
        else if (arg == "--once") o.once = true;
        else if (arg == "--poll-cycles" && has_value) o.poll_cycles = std::strtoull(argv[++i], 0, 10);
        else if (arg == "--parent" && has_value) o.parent = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "board: unknown argument %s\n", arg.c_str());
            std::exit(2);
        }
    }
    if (o.poll_cycles == 0) o.poll_cycles = 1;
    return o;
}

// The host side: a listening socket with at most one client, or a pty master.
class Link {
public:
    explicit Link(const std::string& spec) {
        if (spec == "pty") open_pty();
        else open_socket(spec);
    }

    const std::string& url() const { return url_; }
    bool connected() const { return conn_ >= 0; }
    bool is_pty() const { return pty_; }

    // Wait up to `timeout_ms` (-1: forever) for a client (socket only).
    void accept_client(int timeout_ms) {
        pollfd p{listen_, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return;
        conn_ = accept(listen_, nullptr, nullptr);
        if (conn_ < 0) return;
        int one = 1;
        setsockopt(conn_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::fprintf(stderr, "board: client connected\n");
    }

    // Read whatever the host sent within `timeout_ms` into `got`; refuse a second client.
    // Returns false when the client has gone.
    bool receive(int timeout_ms, std::vector<uint8_t>& got) {
        pollfd p[2] = {{conn_, POLLIN, 0}, {listen_, POLLIN, 0}};
        int n = poll(p, pty_ ? 1 : 2, timeout_ms);
        if (n < 0 && errno != EINTR) die("poll");
        if (n <= 0) return true;
        bool readable = p[0].revents & (POLLIN | POLLHUP | POLLERR);
        // Refuse a newcomer only while the current client has nothing left to read: a client that
        // has just closed (its end of file still unread) hands over to the newcomer instead.
        if (!pty_ && (p[1].revents & POLLIN) && !readable) refuse();
        if (!readable) return true;
        uint8_t buf[65536];
        ssize_t r = read(conn_, buf, sizeof buf);
        if (r > 0) {
            got.insert(got.end(), buf, buf + r);
            return true;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR || (pty_ && errno == EIO))) return true;
        return pty_;    // a pty has no client to lose: nobody has it open (EIO) is "no bytes"
    }

    // Send all of `bytes` (blocking: a host that does not read holds the board back, as on a
    // board). Returns false when the client has gone.
    bool send_all(std::vector<uint8_t>& bytes) {
        size_t done = 0;
        while (done < bytes.size()) {
            ssize_t w = pty_ ? write(conn_, bytes.data() + done, bytes.size() - done)
                             : send(conn_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (w > 0) {
                done += w;
            } else if (w < 0 && (errno == EAGAIN || errno == EINTR) && !stop_requested) {
                pollfd p{conn_, POLLOUT, 0};
                poll(&p, 1, 100);
            } else {
                bytes.clear();
                return false;
            }
        }
        bytes.clear();
        return true;
    }

    void drop_client() {
        close(conn_);
        conn_ = -1;
        std::fprintf(stderr, "board: client disconnected\n");
    }

private:
    void open_socket(const std::string& spec) {
        // socket:HOST:PORT
        size_t a = spec.find(':'), b = spec.rfind(':');
        if (spec.compare(0, a, "socket") != 0 || a == b) {
            std::fprintf(stderr, "board: unknown endpoint %s\n", spec.c_str());
            std::exit(2);
        }
        std::string host = spec.substr(a + 1, b - a - 1);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(std::atoi(spec.c_str() + b + 1));
        if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
            std::fprintf(stderr, "board: not an IPv4 address: %s\n", host.c_str());
            std::exit(2);
        }
        listen_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind " + spec);
        if (listen(listen_, 4) < 0) die("listen");
        socklen_t len = sizeof addr;
        getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
        url_ = "socket://" + host + ":" + std::to_string(ntohs(addr.sin_port));
    }

    void open_pty() {
        pty_ = true;
        conn_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (conn_ < 0 || grantpt(conn_) < 0 || unlockpt(conn_) < 0) die("posix_openpt");
        url_ = ptsname(conn_);
        // Keep the slave open ourselves, in raw mode, so the host may open and close it freely.
        slave_ = open(url_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave_ < 0) die("open " + url_);
        termios t{};
        tcgetattr(slave_, &t);
        cfmakeraw(&t);
        tcsetattr(slave_, TCSANOW, &t);
        fcntl(conn_, F_SETFL, fcntl(conn_, F_GETFL) | O_NONBLOCK);
    }

    void refuse() {
        int extra = accept(listen_, nullptr, nullptr);
        if (extra >= 0) {
            close(extra);
            std::fprintf(stderr, "board: refused a second client (one at a time)\n");
        }
    }

    std::string url_;
    int listen_ = -1, conn_ = -1, slave_ = -1;
    bool pty_ = false;
};

// CPU time this process has used (user + system), in seconds.
double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// benchmarks/host.py reads this line (spikefab.boards.sim.NativeBoard.stats).
void report(const Board& board) {
    std::fprintf(stderr, "board: total %llu cycles in %.6f s of clock, %.6f s of CPU\n",
                 static_cast<unsigned long long>(board.cycles()), board.clocked_seconds(),
                 cpu_seconds());
    std::fflush(stderr);
}

bool parent_gone(pid_t parent) { return parent && getppid() != parent; }

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);
    // End with the process that started us, even if it dies without closing us.
    if (opt.parent) prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (parent_gone(opt.parent)) return 0;
    struct sigaction stop{};
    stop.sa_handler = request_stop;     // no SA_RESTART: blocking calls return to the loop
    sigaction(SIGTERM, &stop, nullptr);
    Verilated::commandArgs(1, argv);
    Link link(opt.listen);
    Board board;
    std::printf("%s\n", link.url().c_str());
    std::fflush(stdout);
    std::vector<uint8_t> got, replies;
    while (!stop_requested) {
        if (!link.connected()) {
            link.accept_client(1000);
            if (parent_gone(opt.parent)) return 0;
            continue;
        }
        // Idle (every frame answered, nothing queued): block until the host sends something.
        bool busy = board.busy();
        bool alive = link.receive(busy ? 0 : 1000, got);
        if (!got.empty()) {
            board.give(got.data(), got.size());
            got.clear();
        }
        if (alive && (busy || board.busy())) {
            board.run(opt.poll_cycles, replies);
            if (!replies.empty()) alive = link.send_all(replies);
        }
        if (!alive) {
            link.drop_client();
            if (stop_requested) break;
            uint64_t cycles = board.resynchronise();
            std::fprintf(stderr, "board: receiver resynchronised (%llu cycles)\n",
                         static_cast<unsigned long long>(cycles));
            report(board);
            if (opt.once) return 0;
        } else if (!busy && parent_gone(opt.parent)) {
            return 0;
        }
    }
    report(board);      // SIGTERM: NativeBoard.close() still learns the cycle count
    return 0;
}
