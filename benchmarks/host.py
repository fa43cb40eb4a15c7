"""Host benchmarks: reader and encoder events/s, link bytes per event at several densities, and
end-to-end events/s and steps/s through the golden model and the simulated board (byte-stream
top and UART top), with the simulated board's clock cycles per second.

    python benchmarks/host.py            # prints markdown tables (docs/host.md has results)
    python benchmarks/host.py --no-sim   # skip the simulated board
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spikefab import protocol as P
from spikefab.host.bundled import bars, sample_path
from spikefab.host.device import open_device
from spikefab.host.encode import Encoder, EncoderConfig
from spikefab.host.events import open_recording, write_recording
from spikefab.host.link import ChipClient
from spikefab.host.session import encoded_steps
from spikefab.host.synthetic import moving_shapes

UART_12M = 12e6 / 10          # bytes/s on a 12 Mbaud 8N1 link
#: The iCEBreaker build's clock and its UART divisor for 1 Mbaud (boards/icebreaker.py).
ICEBREAKER_HZ, ICEBREAKER_DIVISOR = 18e6, 18      # the board's clock and 1 Mbaud divisor


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def readers(events, folder):
    print("| format | events | read events/s |\n|---|---|---|")
    for suffix in (".aedat4", ".raw", ".dat", ".csv", ".npy"):
        path = write_recording(Path(folder) / f"bench{suffix}", events, (346, 260))
        seconds = best_of(lambda p=path: sum(len(c) for c in open_recording(p).chunks()))
        print(f"| {suffix[1:]} | {len(events):,} | {len(events) / seconds / 1e6:.1f} M |")


def link_bytes(ids_per_step):
    """Bytes on the link for one step: the input frames of the ids (as `Device.stream` sends
    them) and a TICK (FETCH excluded)."""
    total = len(P.request(P.Op.TICK, 1, P.REQUESTS[P.Op.TICK].pack_head(steps=1)))
    for op, args in ChipClient.input_requests(np.asarray(ids_per_step, dtype=np.int64)):
        total += len(P.request(op, 1, args))
    return total


def encoders(events):
    print("\n| encoder settings | events/s (encode) | events/s (encode + frame) | "
          "x 12 Mbaud at 1 byte/event |\n|---|---|---|---|")
    settings = {"pool 8, split": EncoderConfig(pool=(8, 8)),
                "pool 8, split, refractory 1 ms": EncoderConfig(pool=(8, 8), refractory_us=1000),
                "pool 8, denoise 5 ms": EncoderConfig(pool=(8, 8), denoise_us=5000)}
    for name, cfg in settings.items():
        def encode(frame=False, cfg=cfg):
            enc = Encoder(cfg, (346, 260))
            for i in range(0, len(events), 65536):
                for _, ids in enc.feed(events[i:i + 65536]):
                    if frame:
                        link_bytes(ids % 256)
        plain = len(events) / best_of(encode)
        framed = len(events) / best_of(lambda: encode(True))
        print(f"| {name} | {plain / 1e6:.1f} M | {framed / 1e6:.2f} M | "
              f"{framed / UART_12M:.1f} |")


def densities():
    print("\n| events per step | bytes/event, ids < 256 (INPUT8 + TICK) | 12 Mbaud events/s | "
          "bytes/event, ids >= 256 (INPUT + TICK) | 12 Mbaud events/s |\n|---|---|---|---|---|")
    for n in (1, 5, 20, 100, 500, 2000):
        b8 = link_bytes(np.arange(n) % 256) / n
        b16 = link_bytes(256 + np.arange(n) % 256) / n
        print(f"| {n} | {b8:.2f} | {UART_12M / b8:,.0f} | {b16:.2f} | {UART_12M / b16:,.0f} |")


def sample_steps(spec) -> list:
    """The bundled sample's (step, input indices) pairs through `spec`'s encoder."""
    rec = open_recording(sample_path())
    return list(encoded_steps(rec, Encoder(spec.encoder, (rec.width, rec.height)), []))


def end_to_end(sim: bool):
    spec = bars()
    steps = sample_steps(spec)
    print("\n| device | steps | events sent | seconds | events/s | steps/s | bytes/event | "
          "simulated cycles | cycles/s (wall, while clocking) | cycles per CPU-second | "
          f"the same cycles at {ICEBREAKER_HZ / 1e6:g} MHz |\n" + "|---" * 11 + "|")
    devices = [("model", None), ("sim", None), ("sim", ICEBREAKER_DIVISOR)] if sim else \
        [("model", None)]
    for name, divisor in devices:
        with open_device(name, uart_divisor=divisor) as device:
            image = spec.network.compile(device.config)
            device.load(image)
            r = device.stream(image, spec.input_group, steps)
        # The simulated board reports its clock cycles when its client has gone (on close).
        clock = device.board.stats() if device.board is not None else {}
        cycles = (f"{clock['cycles']:,} | {clock['cycles'] / clock['clock_seconds'] / 1e6:.2f} M"
                  f" | {clock['cycles'] / clock['cpu_seconds'] / 1e6:.2f} M | "
                  f"{clock['cycles'] / ICEBREAKER_HZ:.3f} s" if clock else "- | - | - | -")
        label = name if divisor is None else f"{name}, UART top (divisor {divisor}: 1 Mbaud)"
        print(f"| {label} | {r.steps} | {r.events_sent} | {r.seconds:.2f} | "
              f"{r.events_per_second:,.0f} | {r.steps / r.seconds:,.0f} | "
              f"{r.request_bytes / r.events_sent:.2f} | {cycles} |")


def latency(sim: bool, n_steps: int = 300):
    """Round trip of one step, unpipelined: send its inputs, TICK and FETCH, wait for the FETCH
    reply (the output spikes on the host). For an event that is the time from the step's close
    to its output spikes; binning adds up to one step (dt) before that. For the UART top the
    simulated cycles of the round trips at the board's clock are the board's own latency (the
    load before them runs in a session of its own, so its cycles are not counted)."""
    from spikefab.boards.sim import NativeBoard
    from spikefab.spec import ChipConfig
    spec = bars()
    steps = [(s, ids) for s, ids in sample_steps(spec) if len(ids)][:n_steps]
    print(f"\n| device | round trips | median | 99th percentile | the board's own (mean, "
          f"simulated cycles at {ICEBREAKER_HZ / 1e6:g} MHz) |\n|---|---|---|---|---|")
    devices = [("model", None), ("sim", None), ("sim", ICEBREAKER_DIVISOR)] if sim else \
        [("model", None)]
    for name, divisor in devices:
        board = NativeBoard(ChipConfig(), uart_divisor=divisor) if name == "sim" else None
        spec_or_url = board.url if board else name
        with open_device(spec_or_url, timeout=60) as device:
            image = spec.network.compile(device.config)
            device.load(image)
        loaded = _reported_cycles(board)
        with open_device(spec_or_url, timeout=60) as device:
            if board is None:
                device.load(image)          # the model's state went with its session
            times = _round_trips(device.client, image.input_ids[spec.input_group], steps)
        own = "-"
        if board is not None:
            board.close()
            cycles = board.stats()["cycles"] - loaded
            own = f"{cycles / len(steps) / ICEBREAKER_HZ * 1e6:.0f} us"
        label = name if divisor is None else f"{name}, UART top (divisor {divisor}: 1 Mbaud)"
        ms = np.percentile(times, [50, 99]) * 1e3
        print(f"| {label} | {len(steps)} | {ms[0]:.2f} ms | {ms[1]:.2f} ms | {own} |")


def _round_trips(client, input_ids, steps) -> list[float]:
    ids_of, times = np.asarray(input_ids), []
    before = client.status()["step"]
    for _, local in steps:
        started = time.perf_counter()
        client.send_input(ids_of[np.asarray(local)])
        client.send_tick(1)
        client.send_fetch(P.FETCH_MAX, lambda spikes: None)
        client.flush()
        times.append(time.perf_counter() - started)
    assert client.status()["step"] == before + len(steps)
    return times


def _reported_cycles(board, timeout: float = 30) -> int:
    """The cycles a simulated board reported when its last client left (it reports after
    resynchronising its receiver); 0 for no board."""
    deadline = time.monotonic() + timeout
    while board is not None and time.monotonic() < deadline:
        if board.stats():
            return board.stats()["cycles"]
        time.sleep(0.05)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-sim", action="store_true")
    args = parser.parse_args()
    events = moving_shapes(346, 260, duration_us=1_000_000, frame_us=500, seed=1)
    print(f"synthetic DAVIS346-size recording: {len(events):,} events in 1 s\n")
    with tempfile.TemporaryDirectory() as folder:
        readers(events, folder)
    encoders(events)
    densities()
    end_to_end(not args.no_sim)
    latency(not args.no_sim)


if __name__ == "__main__":
    main()
