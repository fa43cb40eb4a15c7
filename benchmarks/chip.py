"""Measure the chip: router throughput, spike latency, chip-level synaptic operations per cycle
(Verilator-simulated gateware, no back-pressure) and link bytes per input event (protocol).

    python benchmarks/chip.py          # prints markdown tables (docs/benchmarks.md holds a copy)

Cycle counts come from the cocotb benches: a request's cycles run from its first byte entering
the chip to its last reply byte leaving it (framing, checks, work and reply included).
"""

from __future__ import annotations

import numpy as np

from spikefab import protocol as P
from spikefab.host.link import ChipClient, RecordingTransport
from spikefab.host.network import Network, load
from spikefab.hw.router import Router
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig
from spikefab.verify.rtlsim import run_chip_exchange, run_cocotb

CFG = ChipConfig(core=CoreConfig(n_neurons=64, n_axons=64, weights_per_word=4), n_cores=4,
                 n_inputs=64, route_entries=1024, max_host_events=1024, host_buffer=256)


def table(rows: list[dict], formats: dict) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(formats.get(k, "{}").format(row[k]) for k in head) + " |")
    return "\n".join(lines)


def router_throughput() -> dict:
    cfg = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=16), n_cores=3, n_inputs=8,
                     route_entries=64, max_host_events=64, host_buffer=16)
    rng = np.random.default_rng(1)
    fanout = 8
    starts = rng.integers(0, cfg.route_entries - fanout, cfg.n_sources)
    counts = np.full(cfg.n_sources, fanout)
    dests = np.stack([rng.integers(0, cfg.n_cores, cfg.route_entries),
                      rng.integers(0, 16, cfg.route_entries)], axis=1)
    sources = rng.integers(0, cfg.n_sources, 500)
    result = run_cocotb(Router(cfg), "router", "spikefab.verify.router_bench", "route_traffic",
                        {"seed": np.array(1), "index": np.stack([starts, counts], axis=1),
                         "dests": dests, "sources": sources, "gap_prob": np.array(0.0),
                         "stall_prob": np.array(0.0)})
    events = int(result["events"]) + int(result["host"])
    return {"fan-out": fanout, "sources": len(sources), "destinations": events,
            "cycles": int(result["cycles"]), "destinations/cycle": events / int(result["cycles"])}


def feedforward_network(rng, n_in, n_out, density):
    net = Network()
    inp = net.add_input("in", n_in)
    out = net.add_population("out", n_out, beta=3900, threshold=400)
    net.connect(inp, out, rng.integers(1, 60, (n_in, n_out)) * (rng.random((n_in, n_out))
                                                                   < density))
    return net


def tick_costs(rates, steps=20) -> list[dict]:
    """Chip-level synaptic ops per cycle: input events fanned out to every core.

    Counts the cycles of the INPUT and TICK requests (framing, checks, routing, the cores'
    work; the next request waits until the cores are idle) and of a final READ_STATUS, which
    waits for the last events to finish.
    """
    rows = []
    for rate in rates:
        rng = np.random.default_rng(2)
        net = feedforward_network(rng, 64, CFG.n_cores * CFG.core.n_neurons, 1.0)
        transport = RecordingTransport(ChipModel(CFG))
        client = ChipClient(transport)
        load(client, net.compile(CFG))
        timed, events = [], 0         # indices of the INPUT and TICK requests
        for _ in range(steps):
            ids = np.flatnonzero(rng.random(64) < rate)
            events += len(ids)
            if len(ids):
                client.input(ids)
                timed.append(len(transport.requests) - 1)
            client.tick(1)
            timed.append(len(transport.requests) - 1)
        client.status()                # the cores' last events finish before this reply
        timed.append(len(transport.requests) - 1)
        result = run_chip_exchange(CFG, transport.requests, transport.replies)
        cycles = int(np.sum(result["request_cycles"][timed]))
        synops = events * CFG.n_cores * CFG.core.n_neurons
        rows.append({"input rate": rate, "input events": events, "cycles": cycles,
                     "synops/cycle": synops / cycles, "cycles/step": cycles / steps})
    return rows


def spike_latency() -> dict:
    """Cycles a TICK takes with no spike, and the extra cycles one routed spike costs."""
    cfg = CFG
    costs = []
    for threshold in (30000, 0):       # no neuron fires / one neuron fires (bias drives it)
        transport = RecordingTransport(ChipModel(cfg))
        client = ChipClient(transport)
        words = [0] * cfg.core.n_neurons
        words[0] = (threshold << 26) | (1 << 41) if threshold == 0 else threshold << 26
        client.write_params(0, 0, words)
        client.write_route_index(0, [(0, 1)])
        client.write_route_dest(0, [(1, 0)])
        first = len(transport.requests)
        client.tick(1)
        result = run_chip_exchange(cfg, transport.requests, transport.replies)
        costs.append(int(result["request_cycles"][first]))
    return {"TICK, no spike": costs[0], "TICK, one spike to one core": costs[1],
            "extra cycles per routed spike": costs[1] - costs[0]}


def link_bytes(rates) -> list[dict]:
    rows = []
    for rate in rates:
        rng = np.random.default_rng(3)
        total_bytes = total_events = 0
        for _ in range(100):
            ids = np.flatnonzero(rng.random(CFG.n_inputs) < rate)
            total_events += len(ids)
            # The frames the host client sends for this step (INPUT8/INPUT split as it splits).
            requests = ChipClient.input_requests(ids)
            requests.append((P.Op.TICK, P.REQUESTS[P.Op.TICK].pack_head(steps=1)))
            total_bytes += sum(len(P.request(op, 1, args)) for op, args in requests)
        rows.append({"input rate": rate, "events/step": total_events / 100,
                     "bytes/event (INPUT + TICK frames)": total_bytes / max(total_events, 1)})
    return rows


def main():
    print("router ...", flush=True)
    router = router_throughput()
    print("spike latency ...", flush=True)
    latency = spike_latency()
    print("chip synaptic ops ...", flush=True)
    ticks = tick_costs([0.02, 0.1, 0.3])
    print("\n## Router (gateware, no back-pressure)\n")
    print(table([router], {"destinations/cycle": "{:.2f}"}))
    print("\n## Spike latency (chip gateware, cycles per TICK request incl. framing)\n")
    print(table([latency], {}))
    print(f"\n## Chip synaptic operations ({CFG.n_cores} cores x {CFG.core.n_neurons} neurons, "
          f"K = {CFG.core.weights_per_word}, every input fans out to every core)\n")
    print(table(ticks, {"synops/cycle": "{:.2f}", "cycles/step": "{:.0f}"}))
    print("\n## Link bytes per input event (64 inputs, one INPUT and one TICK frame per step)\n")
    print(table(link_bytes([0.02, 0.1, 0.3, 0.9]),
                {"events/step": "{:.1f}", "bytes/event (INPUT + TICK frames)": "{:.2f}"}))


if __name__ == "__main__":
    main()
