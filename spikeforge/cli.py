"""The `spikeforge` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("spikeforge")


def _demo(args) -> int:
    """Run a seeded random network on the golden model and on the simulated gateware."""
    from spikeforge.host.networks import poisson_events, random_params, random_weights
    from spikeforge.host.plots import save_raster
    from spikeforge.hw.rtlsim import SimulationFailed, make_scenario, run_scenario
    from spikeforge.sim import CoreModel
    from spikeforge.spec import CoreConfig

    cfg = CoreConfig(n_neurons=args.neurons, n_axons=args.axons, weights_per_word=args.k)
    rng = np.random.default_rng(args.seed)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    steps = poisson_events(rng, args.steps, cfg.n_axons, args.rate)
    print(f"spikeforge demo: {cfg.n_neurons} neurons x {cfg.n_axons} axons, "
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
    args.out.mkdir(parents=True, exist_ok=True)
    image = save_raster(args.out / "demo_raster.png", steps, cfg.n_axons, rtl_spikes,
                        title=f"spikeforge core demo (seed {args.seed}): gateware = model: {agree}")
    print(f"spike raster saved to {image}")
    return 0 if agree else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="spikeforge: an open, verified FPGA neuromorphic accelerator.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
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
    from spikeforge.boards.build import add_parser as add_build_parser
    add_build_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # Third-party loggers (the cocotb runner) only speak up with --verbose.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if getattr(args, "sim", None):
        os.environ["SPIKEFORGE_SIM"] = args.sim
    try:
        return args.func(args)
    except ValueError as exc:      # user mistakes (bad parameters) get one clear line
        print(f"spikeforge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
