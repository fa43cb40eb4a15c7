"""End-to-end latency of live input: from an event's arrival on the host to its step's output
spikes on the host, median and 99th percentile, for the golden model and the simulated board
(measured), and for the iCEBreaker and ULX3S boards at 1 Mbaud (computed, formula below).

    python benchmarks/latency.py              # prints markdown tables (docs/host.md has results)
    python benchmarks/latency.py --no-sim     # skip the simulated board

Runs: the bundled sample through the bundled network `bars`, replayed at its own pace
(`--realtime`) and sent over UDP on 127.0.0.1 by a second process (`spikefab send`, faery's UDP
output) into faery's UDP input. The simulated board gets a short slice (it runs ~30 steps/s).

Board estimate, per step k with E_k input events (INPUT8 ids) and S_k output spikes fetched:
    device_k = 10 · (request_k + reply_k) / baud + C_k / f_clk          (no overlap: an upper bound)
    C_k = (11 + N/K) · E_k + (N + 76) + 4 · S_k                          (chip cycles)
request/reply bytes of each step are those the model run put on its link (the same frames a board
gets); 11 cycles per id in the protocol engine, N/K per event in a core, N + 5 per TICK plus 71 of
request handling and 4 per drained spike are the chip's measured costs (docs/benchmarks.md). The
step's wait to close (event arrival -> step closed: dt, slack and the host) is the one measured
in the model run; a board replaces only the device part.
"""

import argparse
import socket
import subprocess
import sys
import time

import numpy as np

from spikefab.host.bundled import sample_path
from spikefab.host.device import open_device
from spikefab.host.events import EVENTS_DTYPE
from spikefab.host.live import LiveSteps, UdpSource, live_steps, parse_udp
from spikefab.host.preflight import prepare_run
from spikefab.host.session import run_live

#: (name, core clock Hz, baud) from docs/boards.md
BOARDS = (("iCEBreaker", 18e6, 1_000_000), ("ULX3S", 35e6, 1_000_000))
UDP_SLACK_US = 25_000


def ms(values) -> str:
    values = np.asarray(values, dtype=float) * 1e3
    return f"{np.median(values):.2f} / {np.percentile(values, 99):.2f}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def faery_udp_delay(n=500):
    """Delay of faery's UDP input: datagrams carry their send time (µs of the monotonic clock)
    as the event time, sent every ms; delay = handover to spikefab - send."""
    url = f"udp://127.0.0.1:{free_port()}"
    delays = []
    with UdpSource(parse_udp(url)) as source, socket.socket(socket.AF_INET,
                                                            socket.SOCK_DGRAM) as out:
        for _ in range(n):
            event = np.zeros(1, EVENTS_DTYPE)
            event["t"] = int(time.perf_counter() * 1e6)
            out.sendto(event.tobytes(), source.target)
            time.sleep(0.001)
        deadline = time.perf_counter() + 2
        while len(delays) < n and time.perf_counter() < deadline:
            for arrival, events in source.poll(0.05):
                delays += list(arrival - events["t"] / 1e6)
    print("| faery UDP input, 1 event per datagram every 1 ms | datagrams | delay median / p99 "
          "(ms) |\n|---|---|---|")
    print(f"| send -> spikefab | {len(delays)} of {n} | {ms(delays)} |")


def run(device_name, source, sim_seconds):
    """One live run; returns (done, inputs)."""
    url = f"udp://127.0.0.1:{free_port()}"
    duration = sim_seconds if device_name == "sim" else None
    inputs = prepare_run("bars", url if source == "udp" else sample_path(),
                         dimensions=(64, 64) if source == "udp" else None)
    sender = []

    def open_steps():
        if source == "replay":
            steps = live_steps(inputs.recording, inputs.encoder, duration_s=duration)
            return steps
        steps = LiveSteps(UdpSource(parse_udp(url), (64, 64)), inputs.encoder,
                          sensor=(64, 64), slack_us=UDP_SLACK_US, idle_s=1.0, wait_s=30)
        args = ["--duration", str(duration)] if duration else []
        sender.append(subprocess.Popen([sys.executable, "-m", "spikefab.cli", "send",
                                        str(sample_path()), url, *args],
                                       stdout=subprocess.DEVNULL))
        return steps

    try:
        with open_device(device_name) as device:
            done = run_live(device, inputs.spec.network, inputs.spec.input_group, open_steps)
    finally:
        for p in sender:
            try:
                p.wait(timeout=60)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return done


def board_device_seconds(done, clock_hz, baud):
    """The device part of each step on a board (module docstring's formula)."""
    result, run = done.result, done.run
    n, k = 256, 2                                       # the bars network's cores: 256 x 256, K=2
    steps = len(result.step_times)
    events = np.zeros(steps, np.int64)
    counts = np.asarray(run.input_counts)[:steps]
    events[:len(counts)] = counts
    spikes = np.zeros(steps, np.int64)
    for s in result.spikes.values():
        np.add.at(spikes, s[:, 0][s[:, 0] < steps], 1)
    cycles = (11 + n // k) * events + (n + 76) + 4 * spikes
    link = 10 * result.step_bytes.sum(axis=1) / baud
    return link + cycles / clock_hz


def table(runs):
    print("\n| device | input | events | steps | behind the clock: median / max (ms) | "
          "latency median / p99 (ms) | waiting for the step to close | device (step closed "
          "-> spikes on the host) |\n|---|---|---|---|---|---|---|---|")
    for (device, source), done in runs.items():
        arrival, closed, finished, _ = done.live.samples(done.result)
        lag = np.array(done.live.lag) * 1e3
        print(f"| {device} | {source} | {done.live.events} | {done.live.steps} | "
              f"{np.median(lag):.1f} / {lag.max():.1f} | {ms(finished - arrival)} | "
              f"{ms(closed - arrival)} | {ms(finished - closed)} |")
    base = runs[("model", "replay")]
    arrival, closed, _, step = base.live.samples(base.result)
    for name, clock, baud in BOARDS:
        device = board_device_seconds(base, clock, baud)[step]
        print(f"| {name} ({clock / 1e6:g} MHz, {baud / 1e6:g} Mbaud), computed | replay | "
              f"{base.live.events} | {base.live.steps} | - | "
              f"{ms(closed - arrival + device)} | {ms(closed - arrival)} | {ms(device)} |")
    bytes_per_step = base.result.step_bytes.sum(axis=1)
    p50, p99 = np.percentile(bytes_per_step, [50, 99])
    print(f"\nLink bytes per step (model replay, request + reply): median {p50:.0f}, 99th "
          f"percentile {p99:.0f} over all steps; a 1 Mbaud link carries 100 bytes per 1 ms step.")
    for name, clock, baud in BOARDS:
        link = 10 * bytes_per_step[step] / baud
        chip = board_device_seconds(base, clock, baud)[step] - link
        print(f"{name}, over the events of spiking steps: link {ms(link)} ms, chip cycles "
              f"{ms(chip)} ms (median / p99); {np.median(bytes_per_step[step]):.0f} bytes "
              "per such step (median).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sim", action="store_true", help="skip the simulated board")
    parser.add_argument("--sim-seconds", type=float, default=0.3,
                        help="seconds of the sample streamed into the simulated board")
    args = parser.parse_args()
    faery_udp_delay()
    runs = {("model", "replay"): run("model", "replay", None),
            ("model", "udp"): run("model", "udp", None)}
    if not args.no_sim:
        runs[("sim", "replay")] = run("sim", "replay", args.sim_seconds)
    table(runs)


if __name__ == "__main__":
    main()
