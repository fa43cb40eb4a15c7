"""Measure the plasticity unit: cycles per learning step, synapse updates per cycle, the overhead
of learning on inference, and the golden model's speed with learning on.

    python benchmarks/plasticity.py            # prints markdown tables (copied into docs)
    python benchmarks/plasticity.py --quick    # fewer steps

Gateware figures come from the Verilator-simulated plastic core (`run_plastic_scenario`, no
back-pressure): the bench there checks every step's TICK-to-STEP_END cycles against
`learning_step_cycles`, so the table's per-step formula is a measured fact, not an estimate. The
256 x 256 overhead table applies that formula to the activity measured on the golden model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikefab.host.networks import events_to_raster, poisson_events, random_params
from spikefab.hw.plasticity import learning_step_cycles
from spikefab.learning import FactorMode, PostMode, PreMode, Reg, bounds_word
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import CoreConfig
from spikefab.verify.plasticity_bench import TICK_TO_STEP_END
from spikefab.verify.rtlsim import make_plastic_scenario, run_plastic_scenario

STDP = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SPIKE, factor_mode=FactorMode.ONE,
            depression=1, m_unit=1, shift=6, x_decay=230, x_inc=100, y_decay=230, y_inc=100)
ERROR = dict(pre_mode=PreMode.TRACE, post_mode=PostMode.SURROGATE, factor_mode=FactorMode.ERROR,
             m_unit=8, shift=6, x_decay=230, x_inc=100, window=200)


def writes_for(cfg, rule):
    writes = [(0, Reg.BOUNDS, bounds_word(cfg, *cfg.weight_range))]
    writes += [(0, Reg[k.upper()], int(v) & 0xFF if k == "m_unit" else int(v))
               for k, v in rule.items()]
    return writes + [(0, Reg.ENABLE, 1)]


def measure_gateware(steps: int) -> list[dict]:
    rows = []
    for n, a, k in [(16, 16, 2), (32, 16, 4)]:
        cfg = CoreConfig(n_neurons=n, n_axons=a, weights_per_word=k)
        rng = np.random.default_rng(3)
        params = random_params(cfg, rng, threshold_scale=1.0)
        weights = rng.integers(-20, 40, (a, n))
        events = poisson_events(rng, steps, a, 0.2)
        scenario = make_plastic_scenario(params, weights, np.ones((a, n), dtype=bool), events,
                                         writes_for(cfg, STDP), seed=3, check_every=steps)
        result = run_plastic_scenario(cfg, scenario)
        learn = result["tick_cycles"] - TICK_TO_STEP_END(cfg)     # the tick without learning
        sweep = result["rows"] * 2 * cfg.words_per_axon
        rows.append({
            "N x A, K": f"{n} x {a}, {k}", "steps": steps,
            "rows/step": float(np.mean(result["rows"])),
            "learning cycles/step": float(np.mean(learn)),
            "formula": float(np.mean([learning_step_cycles(cfg, r) for r in result["rows"]])),
            "synapse updates/sweep cycle": float(result["rows"].sum() * n /
                                                 max(sweep.sum(), 1)),
        })
    return rows


def model_activity(cfg, rule, rate: float, steps: int, seed: int = 4):
    """Run the golden model with learning on; return (rows per step, steps/s, spikes/step)."""
    rng = np.random.default_rng(seed)
    model = PlasticCoreModel(cfg, random_params(cfg, rng, threshold_scale=4.0),
                             rng.integers(-20, 40, (cfg.n_axons, cfg.n_neurons)))
    model.set_mask(np.ones((cfg.n_axons, cfg.n_neurons), dtype=bool))
    model.configure(**rule)
    model.configure(enable=1)
    raster = events_to_raster(poisson_events(rng, steps, cfg.n_axons, rate), cfg.n_axons)
    targets = rng.random((steps, cfg.n_neurons)) < 0.02
    start = time.perf_counter()
    spikes = 0
    for t in range(steps):
        model.set_targets(np.flatnonzero(targets[t]))
        model.events(np.flatnonzero(raster[t]))
        spikes += len(model.tick())
    seconds = time.perf_counter() - start
    return model.rows / steps, steps / seconds, spikes / steps, model.updates / seconds


def overhead_table(steps: int) -> list[dict]:
    cfg = CoreConfig()        # 256 x 256, K = 2
    out = []
    for name, rule in (("STDP", STDP), ("error, surrogate", ERROR)):
        for rate in (0.01, 0.05, 0.2):
            rows, speed, spikes, updates = model_activity(cfg, rule, rate, steps)
            events = rate * cfg.n_axons
            inference = events * cfg.words_per_axon + cfg.n_neurons + 3
            learning = learning_step_cycles(cfg, rows)     # rows: a mean, not an integer
            out.append({
                "rule": name, "input rate": rate, "rows/step": rows,
                "inference cycles/step": inference, "learning cycles/step": learning,
                "slowdown": (inference + learning) / inference,
                "model steps/s": speed, "model updates/s": updates,
            })
    return out


def protocol_costs() -> list[dict]:
    """Cycles of learning requests on the Verilator-simulated chip (first request byte to last
    reply byte, no idle gaps), on a 2-core chip with one plastic 8 x 16 core (K = 2)."""
    from spikefab.host import learning as L
    from spikefab.host.link import ChipClient, RecordingTransport
    from spikefab.learning import Region
    from spikefab.sim import ChipModel
    from spikefab.spec import ChipConfig
    from spikefab.verify.rtlsim import run_chip_exchange
    cfg = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=16, weights_per_word=2), n_cores=2,
                     n_inputs=16, route_entries=64, max_host_events=32, host_buffer=32,
                     plastic=(1,))
    transport = RecordingTransport(ChipModel(cfg))
    client = ChipClient(transport)
    cases = [
        ("WRITE_LEARN 1 factor", lambda: client.write_learn(1, Region.FACTOR, 0, [5])),
        ("WRITE_LEARN 8 factors", lambda: L.send_factors(client, 1, [5] * 8)),
        ("WRITE_LEARN 8 targets", lambda: L.send_targets(client, 1, range(8))),
        ("WRITE_LEARN 15 registers (a rule)",
         lambda: L.configure_rule(client, 1, "stdp", m_unit=3, x_inc=50)),
        ("WRITE_LEARN 17 registers (rule + seed)",
         lambda: L.configure_rule(client, 1, "stdp", m_unit=3, x_inc=50, seed=5)),
        ("WRITE_LEARN 64 mask words", lambda: client.write_learn(1, Region.MASK, 0, [3] * 64)),
        ("READ_LEARN 20 registers", lambda: client.read_learn(1, Region.REGISTERS, 0, 20)),
        ("READ_LEARN 64 mask words", lambda: client.read_learn(1, Region.MASK, 0, 64)),
        ("READ_LEARN 16 pre traces", lambda: client.read_learn(1, Region.PRE_TRACE, 0, 16)),
        ("READ_WEIGHTS 64 words", lambda: client.read_weights(1, 0, 64)),
    ]
    first = len(transport.requests)
    for _, request in cases:
        request()
    result = run_chip_exchange(cfg, transport.requests, transport.replies)
    cycles = result["request_cycles"][first:]
    return [{"request": name, "bytes": len(req), "cycles": int(c)}
            for (name, _), req, c in zip(cases, transport.requests[first:], cycles)]


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    steps = 100 if args.quick else 400
    print("## Gateware (Verilator), STDP, 20 % input activity\n")
    print(table(measure_gateware(steps)))
    print("\n## 256 x 256 core (K = 2): learning overhead per step, golden-model activity\n")
    print(table(overhead_table(100 if args.quick else 300)))
    print("\n## Learning requests over the host protocol (Verilator chip)\n")
    print(table(protocol_costs()))


if __name__ == "__main__":
    main()
