"""cocotb bench of the router: random tables and sources, outputs checked against the model.

The expected output is what `spikefab.sim.ChipModel._route` does: for each source, in order,
its destinations start .. start + count - 1; core destinations on `o_event`, host destinations
on `o_host`. Random idle gaps on `i_source` and random back-pressure on both outputs.
"""

import os
import random

import numpy as np

from spikefab import protocol as P

from .cocotb_api import Clock, RisingEdge, cocotb
from .rtlsim import high, hold_reset


def expected_outputs(index, dests, sources, n_sources):
    events, host, bad = [], [], 0
    for s in sources:
        if s >= n_sources:
            bad += 1
            continue
        start, count = index[s]
        for core, axon in dests[start:start + count]:
            if core == P.HOST_CORE:
                host.append(s)
            else:
                events.append((core, axon))
    return events, host, bad


@cocotb.test()
async def route_traffic(dut):
    with np.load(os.environ["SPIKEFAB_SCENARIO"]) as f:
        sc = {k: f[k] for k in f.files}
    seed = int(sc["seed"])
    dut._log.info("seed %d", seed)
    rng = random.Random(seed)
    index = [tuple(map(int, e)) for e in sc["index"]]
    dests = [tuple(map(int, d)) for d in sc["dests"]]
    sources = [int(s) for s in sc["sources"]]
    gap, stall = float(sc["gap_prob"]), float(sc["stall_prob"])
    want_events, want_host, want_bad = expected_outputs(index, dests, sources, len(index))

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await hold_reset(dut, 2, idle=("i_source__valid", "o_event__ready", "o_host__ready",
                                   "index__w_en", "dest__w_en"))
    for addr, (start, count) in enumerate(index):          # fill the tables
        dut.index__addr.value, dut.index__w_data.value = addr, start | (count << 16)
        dut.index__w_en.value = 1
        await RisingEdge(dut.clk)
    dut.index__w_en.value = 0
    for addr, (core, axon) in enumerate(dests):
        dut.dest__addr.value, dut.dest__w_data.value = addr, core | (axon << 8)
        dut.dest__w_en.value = 1
        await RisingEdge(dut.clk)
    dut.dest__w_en.value = 0

    events, host = [], []
    sent, valid, ev_ready, host_ready, cycles = 0, False, False, False, 0
    limit = 20 * (len(sources) + len(want_events) + len(want_host)) + 1000
    while cycles < limit and (sent < len(sources) or high(dut.busy)
                              or len(events) < len(want_events) or len(host) < len(want_host)):
        await RisingEdge(dut.clk)
        cycles += 1
        if valid and high(dut.i_source__ready):
            sent += 1
            valid = False
        if ev_ready and high(dut.o_event__valid):
            word = dut.o_event__payload.value.to_unsigned()
            events.append((word & 0xFF, word >> 8))
        if host_ready and high(dut.o_host__valid):
            host.append(dut.o_host__payload.value.to_unsigned())
        if not valid and sent < len(sources) and rng.random() >= gap:
            dut.i_source__payload.value = sources[sent]
            valid = True
        dut.i_source__valid.value = valid
        ev_ready, host_ready = rng.random() >= stall, rng.random() >= stall
        dut.o_event__ready.value, dut.o_host__ready.value = ev_ready, host_ready
    failure = ""
    for what, got, want in (("core events", events, want_events), ("host spikes", host,
                                                                     want_host)):
        if got != want and not failure:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
            failure = (f"seed {seed}: {what} differ at #{k}: expected {want[k:k + 4]}, got "
                       f"{got[k:k + 4]} ({len(got)} of {len(want)})")
    bad = dut.bad_source.value.to_unsigned()
    if not failure and bad != want_bad:
        failure = f"seed {seed}: bad_source expected {want_bad}, got {bad}"
    result = {"events": np.array(len(events)), "host": np.array(len(host)),
              "cycles": np.array(cycles)}
    if failure:
        result["failure"] = failure
    np.savez(os.environ["SPIKEFAB_RESULT"], **result)
    assert not failure, failure
