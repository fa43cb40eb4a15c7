"""The `spikefab` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("spikefab")


def _demo(args) -> int:
    """Run a seeded random network on the golden model and on the simulated gateware."""
    from spikefab.host.networks import poisson_events, random_params, random_weights
    from spikefab.host.results import RunOutput, save_run
    from spikefab.sim import CoreModel
    from spikefab.spec import CoreConfig
    from spikefab.verify.rtlsim import SimulationFailed, make_scenario, run_scenario

    cfg = CoreConfig(n_neurons=args.neurons, n_axons=args.axons, weights_per_word=args.k)
    rng = np.random.default_rng(args.seed)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    steps = poisson_events(rng, args.steps, cfg.n_axons, args.rate)
    print(f"spikefab demo: {cfg.n_neurons} neurons x {cfg.n_axons} axons, "
          f"K={cfg.weights_per_word}, "
          f"{args.steps} steps, input rate {args.rate}, seed {args.seed}")

    t0 = time.perf_counter()
    model = CoreModel(cfg, params, weights)
    model_spikes = np.zeros((args.steps, cfg.n_neurons), dtype=bool)
    for t, axons in enumerate(steps):
        model.events(axons)
        model_spikes[t, model.tick()] = True
    print(f"golden model: {int(model_spikes.sum())} spikes in {time.perf_counter() - t0:.2f} s")

    print("gateware: building and simulating with "
          f"{'Verilator' if 'icarus' not in args.sim else 'Icarus'} ...", flush=True)
    t0 = time.perf_counter()
    try:
        result = run_scenario(cfg, make_scenario(params, weights, steps, seed=args.seed,
                                                 check_state=False))
    except SimulationFailed as exc:
        print(f"gateware disagrees with the golden model: {exc}", file=sys.stderr)
        return 1
    rtl_spikes = np.zeros_like(model_spikes)
    rtl_spikes[result["spike_steps"], result["spike_neurons"]] = True
    print(f"gateware:     {int(rtl_spikes.sum())} spikes in {time.perf_counter() - t0:.2f} s "
          f"(mean {np.mean(result['event_cycles']):.0f} event cycles and "
          f"{np.mean(result['tick_cycles']):.0f} tick cycles per step)")

    agree = bool((rtl_spikes == model_spikes).all())
    print(f"gateware and model spike rasters agree exactly: {agree}")
    # The run's outputs as `spikefab run` writes them; a demo step is drawn as 1 ms.
    run = RunOutput({"gateware": np.argwhere(rtl_spikes), "model": np.argwhere(model_spikes)},
                    {"gateware": cfg.n_neurons, "model": cfg.n_neurons},
                    np.array([len(a) for a in steps]), dt_us=1000)
    saved = save_run(args.out, run, title=f"spikefab core demo (seed {args.seed}): "
                                          f"gateware = model: {agree}")
    print(f"saved: {', '.join(str(p) for p in saved)}")
    return 0 if agree else 1


# spikefab run / info / board-sim ----------------------------------------------------------

DEVICE_HELP = ("model (the golden model in this process, the default), sim (start the simulated "
               "board: the chip gateware under Verilator, reached over a local socket), or a "
               "serial port / pyserial URL: serial:///dev/ttyUSB1?baud=3000000, /dev/ttyUSB1, "
               "socket://127.0.0.1:7000 (a running `spikefab board-sim`)")


RUN_EXAMPLES = """examples:
  spikefab run                                      bundled sample, network, golden model
  spikefab run --device sim                         ... on the chip gateware (Verilator)
  spikefab run rec.aedat4 --pool 5 --polarity merge your recording, your encoding
  spikefab run rec.raw --device serial:///dev/ttyUSB1?baud=3000000   a board
  spikefab run rec.aedat4 --realtime               replayed at its own pace, as a camera
  spikefab run udp://127.0.0.1:3333 --dimensions 346x260   live events (faery's UDP input)
  spikefab send rec.aedat4 udp://127.0.0.1:3333     stream a recording there in real time
"""


def _pair(text: str) -> tuple[int, int]:
    """`8` -> (8, 8); `8x4` -> (8, 4)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH, not {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N or WxH, not {text!r}")
    return parts[0], parts[1]


def _crop(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,WIDTH,HEIGHT, not {text!r}")
    return parts


def _run(args) -> int:
    """Stream an event recording through a network on a device; save spikes and a picture.

    With no arguments: the bundled sample recording through the bundled network `bars` on the
    golden model. Outputs (in --out): spikes.npz, spikes.csv, run.png. A udp://HOST:PORT input
    (or --realtime) runs live: steps close on the wall clock, Ctrl-C stops and saves.
    """
    from spikefab.host.bundled import sample_path
    from spikefab.host.device import open_device, parse_config
    from spikefab.host.live import is_live
    from spikefab.host.preflight import prepare_run
    from spikefab.host.results import save_run
    from spikefab.host.session import run_recording
    from spikefab.spec import ChipConfig

    options = {k: v for k, v in (("dt_us", args.dt), ("pool", args.pool), ("crop", args.crop),
                                 ("polarity", args.polarity), ("refractory_us", args.refractory),
                                 ("denoise_us", args.denoise),
                                 ("max_events_per_step", args.cap)) if v is not None}
    path = args.recording or sample_path()
    # Every input is checked here, before any device work.
    inputs = prepare_run(args.network, path, dimensions=args.dimensions, options=options)
    spec, recording, encoder = inputs.spec, inputs.recording, inputs.encoder
    config = parse_config(args.config) if args.config else ChipConfig()
    print("\n".join(inputs.notes))
    if args.device == "sim":
        print("device:    starting the simulated board (the first time builds the chip with "
              "Verilator, about 1-2 minutes) ...", flush=True)
    with open_device(args.device, config=config, timeout=args.timeout) as device:
        print(f"device:    {device.name}: {device.config.n_cores} cores x "
              f"{device.config.core.n_neurons} neurons")
        bar = _progress(args)

        def progress(events, step):
            if bar is not None:
                bar.update(events - bar.n)
                bar.set_postfix_str(f"step {step}", refresh=False)

        try:
            if is_live(path) or args.realtime:
                done = _run_live(args, device, spec, recording, encoder, progress)
            else:
                done = run_recording(device, spec.network, spec.input_group, recording, encoder,
                                     progress=progress)
        finally:
            if bar is not None:
                bar.close()
        capacity = device.capacity
    _report_run(done, encoder.counts, capacity, recording.dropped)
    if done.live is not None:
        print(f"live:      {done.live.describe()}")
        print(f"latency:   {done.live.latency(done.result).describe()}")
    saved = save_run(args.out, done.run, title=f"{Path(path).name} through {args.network} on "
                                               f"{args.device}",
                     image=encoder.totals(), names=spec.names, groups=spec.groups,
                     image_title=encoder.describe_window())
    print(f"saved:     {', '.join(str(p) for p in saved)}")
    return 0


def _run_live(args, device, spec, recording, encoder, progress):
    """Stream a live input (or a replay at its own pace) until Ctrl-C or the source ends."""
    import threading

    from spikefab.host.live import live_steps, stop_on_sigint
    from spikefab.host.session import run_live
    stop = threading.Event()

    def open_steps():
        steps = live_steps(recording, encoder, idle_s=args.idle, duration_s=args.duration,
                           stop=stop, slack_us=None if args.slack is None else args.slack * 1000)
        print(f"live:      {steps.source.name}: ready (Ctrl-C stops and saves)", flush=True)
        return steps

    with stop_on_sigint(stop):
        return run_live(device, spec.network, spec.input_group, open_steps, progress=progress)


def _report_run(done, counts, capacity, reader_dropped: dict | None = None):
    """Print what a run did: events per stage (`reader_dropped`: kind -> events the reader
    dropped), speed, spikes per population, losses."""
    result, run = done.result, done.run
    print(f"events:    {counts.events} read, {counts.inputs} after the encoder "
          f"(dropped: {counts.cropped} cropped, {counts.denoised} denoised, {counts.polarity} "
          f"polarity, {counts.refractory} refractory, {counts.capped} capped), "
          f"{result.events_sent} sent, {result.events_capped} over the chip's per-step limit"
          + "".join(f"; the reader dropped {n} {kind}"
                    for kind, n in (reader_dropped or {}).items()))
    link = (f"; link capacity {capacity / 2:,.0f} events/s at 2 bytes/event"
            if capacity else "")
    print(f"streamed:  {result.steps} steps of {run.dt_us} us in {result.seconds:.2f} s: "
          f"{result.events_per_second:,.0f} events/s, "
          f"{result.request_bytes / max(result.events_sent, 1):.2f} bytes/event{link}")
    for name, s in result.spikes.items():
        print(f"spikes:    {name}: {len(s)} from {len(np.unique(s[:, 1]))} of "
              f"{run.sizes[name]} neurons")
    if result.lost:
        detail = ", ".join(f"{name} +{n}" for name, n in result.lost.items())
        print(f"lost:      the chip dropped events ({detail}): a step made more output spikes "
              f"than its host buffer holds (see flow control in docs/host.md)")


def _progress(args):
    if args.quiet:
        return None
    from tqdm import tqdm
    return tqdm(unit=" events", unit_scale=True, desc="streaming", leave=False,
                disable=None)      # None: only on a terminal


def _info(args) -> int:
    """Print the device's identity, capabilities and status counters."""
    from spikefab.host.device import open_device, parse_config
    config = parse_config(args.config) if args.config else None
    with open_device(args.device, config=config, timeout=args.timeout) as device:
        info = device.info()
    status = info.pop("status")
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print("status:")
    for key, value in status.items():
        print(f"  {key:<{width}}  {value}")
    return 0


def _board_sim(args) -> int:
    """Run the simulated board: the chip gateware under Verilator, behind a socket or a pty.

    Prints the URL to give to `spikefab run --device URL` (or to pyserial) and serves until
    stopped with Ctrl-C (or, with --once, until the first client disconnects).
    """
    from spikefab.boards.sim import serve
    from spikefab.host.device import parse_config
    from spikefab.spec import ChipConfig
    config = parse_config(args.config) if args.config else ChipConfig()
    print(f"board-sim: building the chip ({config.n_cores} cores x {config.core.n_neurons} "
          f"neurons) with Verilator (cached after the first time) ...", flush=True)

    def announce(url):
        if args.ready_file is not None:        # written whole: readers never see part of it
            args.ready_file.with_suffix(".tmp").write_text(url)
            args.ready_file.with_suffix(".tmp").replace(args.ready_file)
        print(f"board-sim: listening on {url} (Ctrl-C stops)", flush=True)
    try:
        serve(config, uart_divisor=args.uart_divisor, port=args.port, host=args.host,
              pty=args.pty, once=args.once, announce=announce)
    except KeyboardInterrupt:
        pass
    return 0


def _import(args) -> int:
    """Load a NIR graph, quantise it for the chip and print placement, resources and the
    quantisation table (docs/deploy.md)."""
    from spikefab.host.device import parse_config
    from spikefab.nir import describe, load
    from spikefab.spec import ChipConfig
    chip = parse_config(args.config) if args.config else ChipConfig()
    imported = load(args.model, dt=None if args.dt is None else args.dt * 1e-6, core=chip.core,
                    weight_percentile=args.percentile)
    print(describe(imported, chip))
    return 0


def add_import(sub):
    imp = sub.add_parser("import", help="load a NIR graph and show how it maps onto the chip",
                         description=_import.__doc__)
    imp.add_argument("model", type=Path, help="NIR graph file (.nir)")
    imp.add_argument("--dt", type=int, metavar="US",
                     help="time step in microseconds (default: the graph's metadata)")
    imp.add_argument("--percentile", type=float, default=100.0, metavar="P",
                     help="weight magnitude percentile that sets each scale (default 100: none "
                          "clipped)")
    imp.add_argument("--config", metavar="KEY=N,...", help="chip configuration, as for run")
    imp.set_defaults(func=_import)


def _add_device_args(parser):
    parser.add_argument("--device", default="model", metavar="DEVICE", help=DEVICE_HELP)
    parser.add_argument("--config", metavar="KEY=N,...",
                        help="chip configuration of model/sim devices, e.g. cores=4,neurons=256,"
                             "axons=256,k=2,inputs=256,plastic=1 (plastic: bit mask of the "
                             "plastic cores; default: ChipConfig())")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for a reply before giving up (default 10)")


def add_run(sub):
    run = sub.add_parser("run", help="stream an event recording through a network on a device",
                         description=_run.__doc__, epilog=RUN_EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("recording", nargs="?",
                     help="event file: .aedat4, .raw (EVT2/EVT3), .dat, .es, .csv, .npy "
                          "(default: the bundled sample), or udp://HOST:PORT: live events "
                          "through faery's UDP input (needs --dimensions)")
    run.add_argument("--network", default="bars", metavar="NET",
                     help="bars (bundled), a NIR graph (.nir) or a Python file defining "
                          "network() (default bars)")
    _add_device_args(run)
    enc = run.add_argument_group("encoding (defaults come from the network)")
    enc.add_argument("--dt", type=int, metavar="US", help="time step in microseconds")
    enc.add_argument("--crop", type=_crop, metavar="X0,Y0,W,H",
                     help="window of the sensor: corner, width, height (default: the centred "
                          "window that fits the network's input grid)")
    enc.add_argument("--pool", type=_pair, metavar="N|WxH",
                     help="pixels per input cell: N or WxH (default: fitted to the sensor)")
    enc.add_argument("--polarity", choices=["split", "merge", "on", "off"],
                     help="split: ON and OFF channels; merge: one channel; on/off: keep one")
    enc.add_argument("--refractory", type=int, metavar="US",
                     help="per-input refractory period (us)")
    enc.add_argument("--denoise", type=int, metavar="US",
                     help="drop events with no neighbour event within this many us")
    enc.add_argument("--cap", type=int, metavar="N", help="at most this many events per step")
    enc.add_argument("--dimensions", type=_pair, metavar="WxH",
                     help="sensor size, any format: for files that give none (.npy, .bin, "
                          ".csv without x@W, EVT/DAT without geometry; else inferred from the "
                          "events), or to override the header")
    live = run.add_argument_group("live input (udp://HOST:PORT or --realtime)")
    live.add_argument("--realtime", action="store_true",
                      help="replay the recording at its own pace, as a live camera")
    live.add_argument("--slack", type=float, metavar="MS",
                      help="a step closes this long after its end on the wall clock (default "
                           "25 for UDP: faery's receiver polls every 20 ms; 2 for --realtime)")
    live.add_argument("--idle", type=float, metavar="S",
                      help="stop after this many seconds without events (default: never)")
    live.add_argument("--duration", type=float, metavar="S",
                      help="stop after this many seconds of steps (default: Ctrl-C)")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)


def add_info(sub):
    info = sub.add_parser("info", help="show a device's identity, capabilities and counters",
                          description=_info.__doc__)
    _add_device_args(info)
    info.set_defaults(func=_info)


def add_board_sim(sub):
    board = sub.add_parser("board-sim", help="run the simulated board (chip gateware under "
                           "Verilator) behind a socket or pty", description=_board_sim.__doc__)
    board.add_argument("--port", type=int, default=7000,
                       help="TCP port to listen on, 0 for any free one (default 7000)")
    board.add_argument("--host", default="127.0.0.1", help="address to listen on")
    board.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal instead")
    board.add_argument("--config", help="chip configuration, e.g. cores=4,neurons=256 "
                       "(default: ChipConfig())")
    board.add_argument("--uart-divisor", type=int,
                       help="put the chip behind its UART at this many cycles per bit")
    board.add_argument("--once", action="store_true",
                       help="stop when the first client disconnects")
    board.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    board.set_defaults(func=_board_sim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikefab",
        description="spikefab: an open, verified FPGA neuromorphic accelerator.",
        epilog="Start with `spikefab run` (the bundled sample through the bundled network). "
               "`spikefab COMMAND --help` explains each command.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_import(sub)
    add_info(sub)
    add_board_sim(sub)
    demo = sub.add_parser("demo", help="run a random network on the model and the gateware",
                          description=_demo.__doc__)
    demo.add_argument("--neurons", type=int, default=256, help="neurons N (default 256)")
    demo.add_argument("--axons", type=int, default=256, help="input axons A (default 256)")
    demo.add_argument("--k", type=int, default=2, help="weights per memory word K (default 2)")
    demo.add_argument("--steps", type=int, default=200, help="time steps (default 200)")
    demo.add_argument("--rate", type=float, default=0.05,
                      help="probability that an axon fires in a step (default 0.05)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument("--sim", default="verilator", choices=["verilator", "icarus"],
                      help="RTL simulator (default verilator)")
    demo.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    demo.set_defaults(func=_demo)
    from spikefab.boards.build import add_parser as add_build_parser
    add_build_parser(sub)
    from spikefab.host.sender import add_parser as add_send_parser
    add_send_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # Third-party loggers (the cocotb runner) only speak up with --verbose.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if getattr(args, "sim", None):
        os.environ["SPIKEFAB_SIM"] = args.sim
    from spikefab.host.errors import ToolError
    from spikefab.host.link import ChipError, LinkError
    try:
        return args.func(args)
    except (ValueError, LinkError, ChipError, ToolError) as exc:  # mistakes, links, tools: a line
        print(f"spikefab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikefab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout left (`spikefab run | head`): stop quietly, as `cat` does. Point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141         # 128 + SIGPIPE, a shell's status for a writer whose pipe closed


if __name__ == "__main__":
    sys.exit(main())
