"""Small blocks under Amaranth's own simulator: no Verilog, no build, no cocotb.

For blocks that take a few thousand cycles to check, `amaranth.sim.Simulator` is faster than a
Verilator build (about 10 k cycles/s when a testbench wakes every cycle, against a build of ~10 s
before the first cycle), so their tests (`tests/test_blocks_amsim.py`) run in-process with async
testbenches, as `amaranth.lib`'s own tests do. Cores and the chip stay on Verilator (`rtlsim`).
Set `SPIKEFAB_WAVES=1` to write a VCD per run into the current directory.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

from amaranth.sim import Simulator

__all__ = ["simulate", "put", "get"]


def simulate(dut, *testbenches, name: str = "dut", processes=(), clock: bool = True,
             max_cycles: int = 200_000):
    """Run `testbenches` (async functions of `ctx`) on `dut`, with a 1 MHz `sync` clock unless
    `clock` is False (a purely combinational design), until every one has returned;
    `processes` run alongside and are dropped at the end. A testbench still waiting after
    `max_cycles` cycles (a block that never answers) fails the run instead of hanging it."""
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    finished = []

    def tracked(bench):
        async def run(ctx):
            await bench(ctx)
            finished.append(bench)
        return run

    for bench in testbenches:
        sim.add_testbench(tracked(bench))
    cycles = 0

    async def count(ctx):
        nonlocal cycles
        async for _ in ctx.tick():
            cycles += 1

    for process in [count, *processes] if clock else processes:
        sim.add_process(process)
    waves = sim.write_vcd(f"{name}.vcd") if os.environ.get("SPIKEFAB_WAVES") else nullcontext()
    with waves:
        while sim.advance() and cycles <= max_cycles:
            pass
    if len(finished) < len(testbenches):
        raise AssertionError(f"{name}: {len(testbenches) - len(finished)} testbench(es) still "
                             f"waiting after {max_cycles} cycles")


async def put(ctx, stream, payload, *, rng=None, gap: float = 0.0):
    """Offer `payload` on `stream` until it is taken (after idle cycles with probability `gap`
    each, drawn from `rng`); return in the cycle after the transfer with `valid` low."""
    while rng is not None and rng.random() < gap:
        await ctx.tick()
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def get(ctx, stream, *, rng=None, stall: float = 0.0):
    """Take one transfer from `stream` (holding `ready` low for a cycle with probability
    `stall`, drawn from `rng`) and return its payload."""
    while True:
        ready = rng is None or rng.random() >= stall
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            ctx.set(stream.ready, 0)
            return payload
