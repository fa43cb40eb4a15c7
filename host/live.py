"""Live event input: steps that close on the wall clock, from a UDP event stream or a recording
replayed at its own pace.

    source = UdpSource(parse_udp("udp://127.0.0.1:3333"))     # faery's UDP input
    steps = LiveSteps(source, encoder, slack_us=30_000, idle_s=2)
    result = device.stream(image, group, steps, live=True)       # (step, ids) pairs
    steps.latency(result)                                        # event arrival -> spike on host

Sources (`QueuedSource`): a thread reads chunks of events and stamps each with its arrival
(`time.perf_counter()`, the monotonic clock every process on the machine shares):
- `UdpSource`: faery's UDP input (`faery.events_stream_from_udp`, formats `t64_x16_y16_on8`, the
  default, and `t32_x16_y15_on1`), which faery's camera inputs and `faery ... output udp` write;
- `ReplaySource`: a recording released at its own pace (`paced`): `spikefab run --realtime`.

Pacing, in one place (`Clock`, `LiveSteps`): the first event to arrive fixes the clock (its time
t0 is due at its arrival). Step k holds the events of [t0 + k·dt, t0 + (k+1)·dt) and closes when
the wall clock passes the due time of its end plus `slack_us` (time for events in flight). It is
then encoded and yielded, with or without events. An event that arrives after its step closed is
*late*: it is counted (`LiveSteps.late`) and delivered in the step still open (its time is moved
to that step's start), never dropped. If the device takes longer than dt per step, steps close
behind the clock: `LiveSteps.lag` holds how far behind each one closed.

A run stops when asked (`stop`, set by Ctrl-C through `stop_on_sigint`), after `duration_s` of
steps, after `idle_s` without events, or when a replay's events are all delivered.

What faery's UDP input does that spikefab cannot see: its receiver polls its queue every 20 ms
when empty (events can arrive up to 20 ms after their datagram: choose `slack_us` above that), and
it discards a datagram whose first event is older than the previous datagram's last (reordered
UDP; it does not happen on loopback).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .events import EVENTS_DTYPE

__all__ = ["Clock", "paced", "release", "QueuedSource", "UdpSource", "ReplaySource", "LiveSteps",
           "Latency", "LiveInput", "parse_udp", "is_live", "stop_on_sigint", "UDP_FORMATS"]

UDP_FORMATS = ("t64_x16_y16_on8", "t32_x16_y15_on1")
#: How long a source waits for its thread to end when closed (s).
CLOSE_TIMEOUT = 2.0


class Clock:
    """Event time (µs) to wall clock (`time.perf_counter()` s): after `anchor(t0_us, wall)`,
    event time t is due at `wall + (t - t0_us) / 1e6`."""

    def __init__(self, now: Callable[[], float] = time.perf_counter):
        self.now, self.t0_us, self.wall = now, None, None

    def anchor(self, t0_us: int, wall: float | None = None):
        self.t0_us, self.wall = int(t0_us), self.now() if wall is None else wall

    def due(self, t_us) -> float:
        return self.wall + (t_us - self.t0_us) / 1e6

    def wait(self, t_us, stop: threading.Event) -> bool:
        """Sleep until event time `t_us` is due; False if `stop` was set first."""
        return not stop.wait(max(0.0, self.due(t_us) - self.now()))


def paced(chunks: Iterable[np.ndarray], stop: threading.Event, *, piece_us: int = 1000,
          clock: Clock | None = None) -> Iterator[np.ndarray]:
    """Re-yield time-ordered event chunks at their own pace: in pieces of `piece_us` µs (from
    the first event), each released by `release`. Ends early when `stop` is set."""
    clock = clock or Clock()
    for chunk in chunks:
        if not len(chunk):
            continue
        t0 = clock.t0_us if clock.t0_us is not None else int(chunk["t"][0])
        piece = (chunk["t"].astype(np.int64) - t0) // piece_us
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(piece)) + 1, [len(chunk)]])
        for start, end in zip(bounds[:-1], bounds[1:]):
            if not release(clock, chunk[start:end], stop):
                return
            yield chunk[start:end]


def release(clock: Clock, events: np.ndarray, stop: threading.Event) -> bool:
    """Wait until a time-ordered piece of events is due (its last event; the first piece
    anchors `clock` now); False if `stop` was set first. The one pacing rule of a replay and
    of `spikefab send`."""
    if clock.t0_us is None:
        clock.anchor(int(events["t"][0]))
    return clock.wait(int(events["t"][-1]), stop)


class QueuedSource:
    """Event chunks read by a thread from `make()` (an iterable), each stamped with its arrival.

    `poll(timeout)` returns the [(arrival, events)] that arrived (waiting up to `timeout` s for
    the first); `ended` is true once the iterable is exhausted and everything was polled. An
    error in the thread is raised by `poll` as a `ValueError` with one line. `close()` stops
    the thread (`_wake` unblocks a reader that waits for data) and waits for it.
    """

    name = "source"

    def __init__(self, make: Callable[[], Iterable[np.ndarray]]):
        self._make, self._queue = make, queue.Queue()
        self._stop, self.ended, self.error = threading.Event(), False, None
        self._thread = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for chunk in self._make():
                if self._stop.is_set():
                    break
                if len(chunk):
                    self._queue.put((time.perf_counter(), chunk))
        except BaseException as exc:      # faery's panics are BaseExceptions
            self.error = exc
        finally:
            self._queue.put(None)

    def poll(self, timeout: float) -> list[tuple[float, np.ndarray]]:
        got = []
        try:
            item = self._queue.get(timeout=max(0.0, timeout))
            while True:
                if item is None:
                    self.ended = True
                    self._raise()
                    break
                got.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        return got

    def _raise(self):
        if self.error is not None:
            raise ValueError(f"{self.name}: {self.error}") from None

    def _wake(self):
        """Unblock the reader thread if it waits for data (nothing by default)."""

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._wake()
            self._thread.join(CLOSE_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ReplaySource(QueuedSource):
    """A recording (`events.Recording`) released at its own pace (`paced`)."""

    def __init__(self, recording, piece_us: int = 1000):
        self.name = f"{recording.path} (real-time replay)"
        super().__init__(lambda: paced(recording.chunks(), self._stop, piece_us=piece_us))


@dataclass(frozen=True)
class UdpAddress:
    host: str
    port: int
    format: str = UDP_FORMATS[0]

    @property
    def url(self) -> str:
        return f"udp://{self.host}:{self.port}"

    @property
    def socket_address(self) -> tuple:
        return (self.host, self.port) if ":" not in self.host else (self.host, self.port, 0, 0)


def is_live(text) -> bool:
    """Whether a `spikefab run` input names a live source (`udp://...`) instead of a file."""
    return str(text).lower().startswith("udp://")


def parse_udp(text: str) -> UdpAddress:
    """`udp://HOST:PORT[?format=t32_x16_y15_on1]` (IPv6 as `udp://[::1]:PORT`)."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme.lower() != "udp" or not parts.hostname or port is None:
        raise ValueError(f"{text}: expected udp://HOST:PORT, e.g. udp://127.0.0.1:3333")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    fmt = options.pop("format", UDP_FORMATS[0])
    if options or fmt not in UDP_FORMATS:
        raise ValueError(f"{text}: the only option is format={'|'.join(UDP_FORMATS)}")
    return UdpAddress(parts.hostname, port, fmt)


class UdpSource(QueuedSource):
    """Events from faery's UDP input on `address` (a `UdpAddress`); `dimensions` only label the
    stream (faery does not check events against them). Returns once the port is bound."""

    def __init__(self, address: UdpAddress, dimensions: tuple[int, int] = (65535, 65535),
                 ready_timeout: float = 2.0):
        import faery
        self.address, self.name = address, address.url
        _check_free(address)        # faery's bind fails in its thread: say why here instead
        # faery's dtype is spikefab's with a title on `on`: the same layout, a view converts.
        def chunks():
            stream = faery.events_stream_from_udp(tuple(dimensions), address.socket_address,
                                                  format=address.format)
            return (chunk.view(EVENTS_DTYPE) for chunk in stream)

        super().__init__(chunks)
        deadline = time.perf_counter() + ready_timeout
        while not _bound(self.target):
            if self.error is not None or time.perf_counter() > deadline:
                self.close()
                self._raise()
                raise ValueError(f"{self.name}: faery's UDP input did not start listening")
            time.sleep(0.01)

    @property
    def target(self) -> tuple:
        """Where to reach the bound socket from here (a wildcard address listens on loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address.host, self.address.host)
        return (host, self.address.port)

    def _wake(self):
        # faery's reader waits for a datagram without end: send it one event (time 2^64 - 1 in
        # either format, so that faery passes it on); the thread sees the stop flag and ends.
        wake = np.zeros(1, EVENTS_DTYPE)
        wake["t"] = np.iinfo(np.uint64).max
        with contextlib.suppress(OSError), _udp_socket(self.target[0]) as s:
            s.sendto(wake.tobytes() if self.address.format == UDP_FORMATS[0]
                     else b"\xff" * 8, self.target)


def _udp_socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)


def _check_free(address: UdpAddress):
    """Raise a one-line `ValueError` if `address` cannot be bound (taken, not this machine's)."""
    with _udp_socket(address.host) as s:
        try:
            s.bind(address.socket_address)
        except OSError as exc:
            raise ValueError(f"{address.url}: cannot listen there: {exc.strerror}") from None


def _bound(target: tuple) -> bool:
    """Whether a socket is bound on UDP `target`: a datagram to an unbound local port comes back
    as ICMP port unreachable, which a connected socket reports as ConnectionRefusedError. The
    probe is one byte, shorter than an event: faery's input reads no event from it."""
    with _udp_socket(target[0]) as probe:
        probe.settimeout(0.05)
        try:
            probe.connect(target)
            probe.send(b"\0")
            probe.recv(1)
        except ConnectionRefusedError:
            return False
        except (TimeoutError, OSError):
            return True
    return True


@dataclass
class LiveInput:
    """What `prepare_run` needs of a live input instead of a `Recording`: its sensor size."""
    address: UdpAddress
    width: int
    height: int
    dropped: dict

    @classmethod
    def open(cls, url: str, dimensions) -> LiveInput:
        address = parse_udp(url)
        if dimensions is None:
            raise ValueError(f"{url}: a live stream carries no sensor size: give --dimensions "
                             "WxH (e.g. 346x260 for a DAVIS346, 1280x720 for an EVK4)")
        _check_free(address)        # before any device work, like a file's first chunk
        return cls(address, int(dimensions[0]), int(dimensions[1]), {})

    @property
    def path(self) -> str:
        return self.address.url

    def describe(self) -> str:
        return (f"live UDP ({self.address.format}, faery's UDP input), {self.width}x"
                f"{self.height} from --dimensions")

    def check(self):
        """Nothing to decode before the run (events arrive during it)."""

    def source(self) -> UdpSource:
        return UdpSource(self.address, (self.width, self.height))


@dataclass
class Latency:
    """End-to-end latency of a live run in ms, over the input events of steps that made output
    spikes: from an event's arrival to the moment its step's spikes were all on the host
    (`total`), split into waiting for the step to close (`binning`) and the device (`device`:
    step closed -> spikes on the host). Each is (median, 99th percentile)."""
    events: int
    total: tuple[float, float]
    binning: tuple[float, float]
    device: tuple[float, float]

    def describe(self) -> str:
        if not self.events:
            return "no input event of the run was followed by an output spike"
        def pair(p):
            return f"{p[0]:.2f} / {p[1]:.2f}"
        return (f"median / 99th percentile over {self.events} events: {pair(self.total)} ms "
                f"(waiting for the step to close {pair(self.binning)}, device "
                f"{pair(self.device)})")


class LiveSteps:
    """(step, input ids) pairs of a live `source` through `encoder`, paced by the wall clock
    (see the module docstring). Counters after the run: `steps`, `late`, `lag` (s, per step),
    `events` (arrived), `outside` (arrived outside the `sensor` (width, height): the encoder
    crops them), `unsent` (arrived for steps after the run stopped), `stopped_by`. An idle stop
    waits until every arrived event was sent; before the first event, the wait is bounded by
    `wait_s` (default `idle_s`)."""

    def __init__(self, source: QueuedSource, encoder, *, sensor: tuple[int, int] | None = None,
                 slack_us: int = 0,
                 idle_s: float | None = None, wait_s: float | None = None,
                 duration_s: float | None = None,
                 stop: threading.Event | None = None, now: Callable[[], float] = time.perf_counter):
        self.source, self.encoder, self.slack_us = source, encoder, int(slack_us)
        self.idle_s, self.duration_s, self.now = idle_s, duration_s, now
        self.wait_s = idle_s if wait_s is None else wait_s
        self.stop = stop or threading.Event()
        self.clock = Clock(now)
        self.sensor = sensor
        self.late = self.events = self.outside = 0
        self.lag: list[float] = []
        self.closed: list[float] = []                 # wall time each step closed
        self.arrivals: list[np.ndarray] = []      # per step: arrival time of each event
        self.stopped_by = ""
        self._events, self._arrival = np.zeros(0, EVENTS_DTYPE), np.zeros(0)   # pending
        self._last_arrival = now()

    @property
    def steps(self) -> int:
        return len(self.closed)

    @property
    def unsent(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if not self._first():
            return
        dt = self.encoder.cfg.dt_us
        step = 0
        while not self._finished(step, dt):
            end_us = self.clock.t0_us + (step + 1) * dt
            deadline = self.clock.due(end_us + self.slack_us)
            self._gather(deadline)
            yield step, self._close(step, end_us - dt, end_us)
            step += 1

    def _first(self) -> bool:
        """Wait for the first events and anchor the clock to them; False if the run stops first."""
        started = self.now()
        while not len(self._events):
            if self.wait_s is not None and self.now() - started > self.wait_s:
                self.stopped_by = f"no events within {self.wait_s:g} s"
            if self.stopped_by or self._should_stop():
                return False
            self._take(self.source.poll(0.05))
        first = int(self._events["t"].min())
        self.clock.anchor(first, float(self._arrival.min()))
        if self.encoder.t0 is None:
            self.encoder.t0 = first        # step 0 starts at the first event, as in a recording
        return True

    def _take(self, got):
        """Add arrived chunks to the pending events (one array, each event with its arrival)."""
        if got:
            self._events = np.concatenate([self._events] + [e for _, e in got])
            self._arrival = np.concatenate([self._arrival]
                                           + [np.full(len(e), a) for a, e in got])
            self._last_arrival = got[-1][0]
            self.events += sum(len(e) for _, e in got)

    def _gather(self, deadline: float):
        """Collect arrivals until `deadline` (wall s) or a stop."""
        while True:
            left = deadline - self.now()
            self._take(self.source.poll(min(max(left, 0.0), 0.05)))
            if left <= 0 or self.stop.is_set() or (self.source.ended and not len(self._events)):
                return

    def _close(self, step: int, start_us: int, end_us: int) -> np.ndarray:
        """Take the pending events before `end_us` (late ones moved to `start_us`) and encode
        them as step `step`."""
        mask = self._events["t"] < end_us
        events, arrival = self._events[mask], self._arrival[mask]
        self._events, self._arrival = self._events[~mask], self._arrival[~mask]
        closed = self.now()
        self.closed.append(closed)
        self.lag.append(max(0.0, closed - self.clock.due(end_us + self.slack_us)))
        if self.sensor is not None:
            self.outside += int(((events["x"] >= self.sensor[0])
                                 | (events["y"] >= self.sensor[1])).sum())
        late = events["t"] < start_us
        self.late += int(late.sum())
        events["t"][late] = start_us
        order = np.argsort(events["t"], kind="stable")
        events, arrival = events[order], arrival[order]
        self.arrivals.append(arrival)
        out = self.encoder.feed(events) + self.encoder.finish() if len(events) else []
        if any(s != step for s, _ in out):
            raise AssertionError(f"the encoder put events of step {step} elsewhere")
        return out[0][1] if out else np.zeros(0, np.int64)

    def _finished(self, step: int, dt: int) -> bool:
        if self.duration_s is not None and step * dt >= self.duration_s * 1e6:
            self.stopped_by = f"after {self.duration_s:g} s"
        return bool(self.stopped_by) or self._should_stop()

    def _should_stop(self) -> bool:
        if self.stop.is_set():
            self.stopped_by = "interrupted"
        elif (self.idle_s is not None and self.events and not len(self._events)
              and self.now() - self._last_arrival > self.idle_s):
            self.stopped_by = f"no events for {self.idle_s:g} s"
        elif self.source.ended and not len(self._events):
            self.stopped_by = "the source ended"
        return bool(self.stopped_by)

    def samples(self, result) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per input event of a step that made output spikes, from a live run's `StreamResult`
        (`stream(..., live=True)`): (arrival, step closed, step's spikes on the host, step)."""
        spiking = np.zeros(self.steps, bool)
        for s in result.spikes.values():
            spiking[s[:, 0][s[:, 0] < self.steps]] = True
        ks = np.flatnonzero(spiking[:len(result.step_times)])
        step = np.concatenate([np.full(len(self.arrivals[k]), k) for k in ks] or [[]])
        step = step.astype(np.int64)
        arrival = np.concatenate([self.arrivals[k] for k in ks] or [np.zeros(0)])
        return arrival, np.array(self.closed)[step], result.step_times[step], step

    def latency(self, result) -> Latency:
        """The `Latency` of a live run's `StreamResult`."""
        arrival, closed, done, _ = self.samples(result)
        if not arrival.size:
            return Latency(0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
        return Latency(int(arrival.size), _ms(done - arrival), _ms(closed - arrival),
                       _ms(done - closed))

    def describe(self) -> str:
        """One line: steps, late events, how far behind the clock steps closed, why it ended."""
        lag = np.array(self.lag or [0.0]) * 1e3
        return (f"{self.steps} steps closed on the wall clock (slack {self.slack_us / 1e3:g} ms), "
                f"{self.events} events arrived, {self.late} late (delivered in the next open "
                f"step), {self.outside} outside the sensor (cropped), {self.unsent} after the "
                f"last step (not sent); steps closed behind the "
                f"clock: {int((lag > 1).sum())} by over 1 ms "
                f"(median {np.median(lag):.1f} ms, max {lag.max():.1f} ms); stopped: "
                f"{self.stopped_by or 'unknown'}")


def _ms(seconds: np.ndarray) -> tuple[float, float]:
    return (float(np.median(seconds) * 1e3), float(np.percentile(seconds, 99) * 1e3))


@contextlib.contextmanager
def stop_on_sigint(stop: threading.Event):
    """While inside: the first Ctrl-C sets `stop` (the run ends after its step and saves its
    outputs), a second one interrupts as usual. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum, frame):
        stop.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: Default slack (µs) per source: faery's UDP receiver polls every 20 ms when idle (see above);
#: a replay releases each event within its 1 ms piece.
DEFAULT_SLACK_US = {"udp": 25_000, "replay": 2_000}


def live_steps(recording, encoder, *, slack_us: int | None = None, **options) -> LiveSteps:
    """`LiveSteps` of a `LiveInput` (faery's UDP input) or a `Recording` (replayed at its own
    pace), its source opened; `options` as `LiveSteps` (idle_s, duration_s, stop)."""
    udp = isinstance(recording, LiveInput)
    source = recording.source() if udp else ReplaySource(recording)
    if slack_us is None:
        slack_us = DEFAULT_SLACK_US["udp" if udp else "replay"]
    return LiveSteps(source, encoder, sensor=(recording.width, recording.height),
                     slack_us=slack_us, **options)
