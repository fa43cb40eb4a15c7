"""Measure the LIF core: cycles per input event and per tick, synaptic ops per cycle (from the
Verilator-simulated gateware, no back-pressure, no idle gaps), and golden-model speed.

    python benchmarks/core.py            # prints markdown tables (docs/benchmarks.md holds a copy)
    python benchmarks/core.py --quick    # a smaller grid

Cycle counts come from the cocotb bench: "event cycles" run from the acceptance of a step's first
event to the acceptance of its TICK; "tick cycles" from the TICK's acceptance to the cycle the
STEP_END marker is taken from the output stream.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikefab.host.networks import events_to_raster, poisson_events, random_params, random_weights
from spikefab.sim import CoreModel
from spikefab.spec import CoreConfig
from spikefab.verify.rtlsim import make_scenario, run_scenario


def measure_gateware(n: int, k: int, rate: float, steps: int, axons: int = 64) -> dict:
    cfg = CoreConfig(n_neurons=n, n_axons=axons, weights_per_word=k)
    rng = np.random.default_rng(1)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    events = poisson_events(rng, steps, axons, rate)
    result = run_scenario(cfg, make_scenario(params, weights, events, seed=1, check_state=False))
    n_events = sum(len(e) for e in events)
    event_cycles = int(np.sum(result["event_cycles"]))
    # event_cycles spans from a step's first event to its TICK: n_events whole events.
    return {
        "N": n, "K": k, "rate": rate, "events": n_events,
        "cycles/event": event_cycles / max(n_events, 1),
        "synops/cycle": n_events * n / max(event_cycles, 1),
        "cycles/tick": float(np.mean(result["tick_cycles"])),
    }


def measure_model(n: int, axons: int, rate: float, steps: int) -> dict:
    cfg = CoreConfig(n_neurons=n, n_axons=axons)
    rng = np.random.default_rng(2)
    model = CoreModel(cfg, random_params(cfg, rng), random_weights(cfg, rng))
    raster = events_to_raster(poisson_events(rng, steps, axons, rate), axons)
    start = time.perf_counter()
    model.run(raster)
    seconds = time.perf_counter() - start
    return {"N": n, "A": axons, "rate": rate, "steps": steps,
            "neuron-updates/s": n * steps / seconds, "steps/s": steps / seconds}


def table(rows: list[dict], formats: dict) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(formats.get(k, "{}").format(row[k]) for k in head) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    args = parser.parse_args()
    grid = [(64, 1), (64, 4), (256, 1), (256, 2), (256, 8), (1024, 4)]
    rates = [0.02, 0.1, 0.3]
    steps = 20
    if args.quick:
        grid, rates, steps = [(64, 1), (64, 4)], [0.1], 10
    rows = []
    for n, k in grid:
        for rate in rates:
            print(f"[{len(rows) + 1}/{len(grid) * len(rates)}] gateware N={n} K={k} rate={rate}",
                  flush=True)
            rows.append(measure_gateware(n, k, rate, steps))
    print("\n## Gateware cycle costs (Verilator, 64 axons, no back-pressure)\n")
    print(table(rows, {"rate": "{:.2f}", "cycles/event": "{:.2f}", "synops/cycle": "{:.2f}",
                       "cycles/tick": "{:.1f}"}))
    model_rows = [measure_model(n, 256, rate, 200 if args.quick else 2000)
                  for n in (256, 1024) for rate in (0.02, 0.2)]
    print("\n## Golden model speed (one thread, batch 1)\n")
    print(table(model_rows, {"rate": "{:.2f}", "neuron-updates/s": "{:,.0f}",
                             "steps/s": "{:,.0f}"}))


if __name__ == "__main__":
    main()
