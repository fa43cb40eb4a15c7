"""cocotb testbench of a plastic LIF core: every weight equals the golden model's after every step.

Loaded by `spikefab.verify.rtlsim.run_plastic_scenario`. The scenario (`.npz`) holds the core's
configuration, neuron parameters, weights, the plastic mask, register writes (at step 0 and later,
so rules change at run time), the LFSR seed, and per step the input events, host factors and
target spikes. Per step the bench writes the step's host factors and targets through the LEARN
config space, sends the events and a TICK, waits for STEP_END, runs the model
(`spikefab.sim.plasticity.PlasticCoreModel`) and compares: spikes, status counters, every
neuron's V/I/refractory count, **every weight**, every trace, spike bit and accumulated factor, the
LFSR state and the epoch counter; it also checks that every weight the learning step changed lies
within the bounds, and it measures the cycles from TICK to STEP_END against
`spikefab.hw.plasticity.learning_step_cycles`. The first mismatch fails with the step, the
address and both values.
"""

from __future__ import annotations

import os

import numpy as np

from spikefab.hw.layouts import ConfigSpace, CoreOp, SpikeKind, command_layout, pack
from spikefab.hw.plasticity import learning_step_cycles
from spikefab.hw.synapse import synapse_word_bits
from spikefab.learning import REGION_SHIFT, Reg, Region, check_register
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import CoreConfig, unpack_weight_word

from .cocotb_api import cocotb
from .core_bench import (
    StreamBench,
    clear_model,
    compare_spikes,
    compare_state,
    compare_status,
    configure,
    load_scenario,
)


def TICK_TO_STEP_END(cfg: CoreConfig) -> int:
    """Cycles from TICK acceptance to the bench's sampling of STEP_END without learning: the
    core's N + 3 (N issue cycles, two update stages) plus the bench's sampling."""
    return cfg.n_neurons + 5


def _fail(message: str):
    raise AssertionError(message)


def learn_addr(region: Region, index: int) -> int:
    return int(region) << REGION_SHIFT | int(index)


async def learn_writes(bench: StreamBench, writes, expect_ok=None):
    """Send LEARN-space writes [(region, index, data)]; check every answer is `expect_ok`."""
    responses = await bench.transact([(True, ConfigSpace.LEARN, learn_addr(r, i), d)
                                      for r, i, d in writes])
    for (region, index, data), resp, ok in zip(writes, responses, expect_ok or
                                               [True] * len(writes)):
        if bool(resp["error"]) == ok:
            _fail(f"LEARN write {Region(region).name}[{index}] = {data:#x}: expected "
                  f"{'success' if ok else 'an error'}, got error={resp['error']}")


async def learn_reads(bench: StreamBench, region: Region, count: int,
                      indices=None) -> list[int]:
    indices = range(count) if indices is None else indices
    responses = await bench.transact([(False, ConfigSpace.LEARN, learn_addr(region, i), 0)
                                      for i in indices])
    for i, resp in zip(indices, responses):
        if resp["error"]:
            _fail(f"LEARN read {region.name}[{i}] answered with an error")
    return [resp["data"] for resp in responses]


async def compare_registers(bench: StreamBench, model: PlasticCoreModel, step: int):
    """Read every register back (after writes, refused ones included) and compare."""
    values = await learn_reads(bench, Region.REGISTERS, len(Reg))
    for reg, value in zip(Reg, values):
        if value != model.read_register(reg):
            _fail(f"step {step}: register {reg.name} reads {value:#x}, expected "
                  f"{model.read_register(reg):#x}")


async def compare_learning(bench: StreamBench, model: PlasticCoreModel, step: int,
                           before: np.ndarray):
    cfg = model.cfg
    word_bits, k = synapse_word_bits(cfg), cfg.weights_per_word
    addresses = [(a << word_bits) | j for a in range(cfg.n_axons)
                 for j in range(cfg.words_per_axon)]
    responses = await bench.transact([(False, ConfigSpace.WEIGHTS, addr, 0) for addr in addresses])
    lo, hi = model.regs.w_min, model.regs.w_max
    for addr, resp in zip(addresses, responses):
        axon, word = addr >> word_bits, addr & ((1 << word_bits) - 1)
        actual = unpack_weight_word(cfg, resp["data"])
        for lane, value in enumerate(actual):
            neuron = word * k + lane
            expected = int(model.weights[axon, neuron])
            if value != expected:
                _fail(f"step {step}: weight axon {axon} -> neuron {neuron}: expected {expected}, "
                      f"got {value} (before the step {before[axon, neuron]})")
            if value != before[axon, neuron]:
                if not model.mask[axon, neuron]:
                    _fail(f"step {step}: fixed synapse {axon} -> {neuron} changed")
                if not lo <= value <= hi:
                    _fail(f"step {step}: weight {axon} -> {neuron} = {value} outside [{lo}, {hi}]")
    checks = [
        (Region.PRE_TRACE, cfg.n_axons,
         lambda i: int(model.x[i]) | int(model.s_pre[i]) << 8),
        (Region.POST_TRACE, cfg.n_neurons, lambda i: int(model.y[i])),
        (Region.ERROR_ACC, cfg.n_neurons, lambda i: int(model.u[i]) & 0xFFFF),
    ]
    for region, count, expected in checks:
        for i, value in enumerate(await learn_reads(bench, region, count)):
            if value != expected(i):
                _fail(f"step {step}: {region.name}[{i}] expected {expected(i):#x}, got {value:#x}")
    regs = await bench.transact([(False, ConfigSpace.LEARN, learn_addr(Region.REGISTERS, r), 0)
                                 for r in (Reg.LFSR_LO, Reg.LFSR_HI, Reg.EPOCH)])
    lfsr = regs[0]["data"] | regs[1]["data"] << 16
    if lfsr != model.lfsr.state or regs[2]["data"] != model.epoch:
        _fail(f"step {step}: LFSR {lfsr:#010x} epoch {regs[2]['data']}, expected "
              f"{model.lfsr.state:#010x} epoch {model.epoch}")


@cocotb.test()
async def run_plastic_scenario(dut):
    cfg, options, params, sc = load_scenario()
    seed = int(options.get("seed", 0))
    dut._log.info("plastic scenario seed %d, config %s, options %s", seed, cfg, options)
    model = PlasticCoreModel(cfg, params, sc["weights"])
    bench = StreamBench(dut, cfg, seed=seed, gap_prob=float(options.get("gap_prob", 0.0)),
                        stall_prob=float(options.get("stall_prob", 0.0)))
    events, offsets = sc["events"].astype(np.int64), sc["step_offsets"].astype(np.int64)
    factors, targets = sc["factors"].astype(np.int64), sc["targets"].astype(bool)
    reg_writes = [tuple(int(v) for v in row) for row in sc["reg_writes"]]   # (step, reg, word)
    check_every = int(options.get("check_every", 1))
    result = {"tick_cycles": [], "rows": [], "updates": [], "spike_count": []}
    try:
        await bench.reset()
        await configure(bench, model, None, False)
        word_bits, k = synapse_word_bits(cfg), cfg.weights_per_word
        mask_writes = []
        for axon in range(cfg.n_axons):
            for word in range(cfg.words_per_axon):
                bits = sum(int(sc["mask"][axon, word * k + lane]) << lane for lane in range(k))
                mask_writes.append((Region.MASK, (axon << word_bits) | word, bits))
        await learn_writes(bench, mask_writes)
        model.set_mask(sc["mask"].astype(bool))
        masks = await learn_reads(bench, Region.MASK, 0, [i for _, i, _ in mask_writes])
        for (_, index, bits), value in zip(mask_writes, masks):
            if value != bits:
                _fail(f"mask word {index} reads {value:#x}, written {bits:#x}")
        clear_steps = set(options.get("clear_steps", []))
        for step in range(len(offsets) - 1):
            writes = [(Region.REGISTERS, reg, word) for s, reg, word in reg_writes if s == step]
            oks = []
            for _, reg, word in writes:
                oks.append(check_register(cfg, reg, word, model.seed_lo))
                if oks[-1]:
                    model.write_register(reg, word)
            await learn_writes(bench, writes, oks)
            if writes:
                await compare_registers(bench, model, step)
            host = [(Region.FACTOR, n, int(f) & 0xFF) for n, f in enumerate(factors[step]) if f]
            host += [(Region.TARGET, n, 1) for n in np.flatnonzero(targets[step])]
            await learn_writes(bench, host)
            written = np.flatnonzero(factors[step])      # the others keep their h_i
            model.h[written] = factors[step][written]
            model.set_targets(np.flatnonzero(targets[step]))
            before = model.weights.copy()
            rows_before, updates_before = model.rows, model.updates
            if step in clear_steps:
                bench.cmds.append(pack(command_layout(cfg), op=CoreOp.CLEAR))
                clear_model(model)
                model.clear()
            await run_step(bench, model, step, events[offsets[step]:offsets[step + 1]], result)
            result["rows"].append(model.rows - rows_before)
            result["updates"].append(model.updates - updates_before)
            if (step + 1) % check_every == 0 or step == len(offsets) - 2:
                await compare_state(bench, model, step)
                await compare_learning(bench, model, step, before)
            if (step + 1) % max(1, (len(offsets) - 1) // 5) == 0:
                dut._log.info("step %d checked (%d cycles)", step + 1, bench.cycles)
        result["final_weights"] = model.weights
    except AssertionError as exc:
        result["failure"] = f"seed {seed}: {exc}"
        raise AssertionError(result["failure"]) from None
    finally:
        np.savez(os.environ["SPIKEFAB_RESULT"], **{k: np.asarray(v) for k, v in result.items()})


async def run_step(bench: StreamBench, model: PlasticCoreModel, step: int, axons, result):
    cfg = model.cfg
    first_output = len(bench.outputs)
    layout = command_layout(cfg)
    for axon in axons:
        bench.cmds.append(pack(layout, op=CoreOp.EVENT, axon=int(axon)))
    bench.cmds.append(pack(layout, op=CoreOp.TICK))
    await bench.run_until(
        lambda: bench.outputs[first_output:] and
        bench.outputs[-1]["kind"] == SpikeKind.STEP_END.value, f"the end of step {step}")
    tick_accept = bench.cmd_accept_cycles[-1]
    model.events(axons)
    enabled = bool(model.regs.enable)
    rows_before = model.rows
    core_step = model.step
    expected = model.tick()
    outputs = bench.outputs[first_output:]
    compare_spikes(step, core_step, outputs[:-1], expected, cfg)
    compare_status(bench.dut, model, step)
    cycles = outputs[-1]["cycle"] - tick_accept
    result["tick_cycles"].append(cycles)
    result["spike_count"].append(len(expected))
    if bench.stall_prob == 0 and os.environ.get("SPIKEFAB_CHECK_CYCLES", "1") == "1":
        want = TICK_TO_STEP_END(cfg)
        if enabled:
            want += learning_step_cycles(cfg, model.rows - rows_before)
        if cycles != want:
            _fail(f"step {step}: TICK to STEP_END took {cycles} cycles, the documented cost is "
                  f"{want} ({model.rows - rows_before} rows updated)")
