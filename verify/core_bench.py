"""cocotb testbench of the LIF core: drives the gateware and checks it against the golden model.

Loaded inside the simulator by `spikefab.verify.rtlsim.run_scenario`. A scenario (an `.npz`) holds
the weights, the neuron parameters, optional initial state, and the input events of every step;
its options set the seed, the probability of an idle gap before each command or config request,
the probability that the spike and config-response streams are back-pressured in a cycle, and
whether every neuron's state is read back and compared after every tick.

Per step the bench sends the step's events and a TICK, collects the spikes up to the STEP_END
marker, and compares (neuron, step) of every spike, the status counters and (if asked) V, I and
the refractory count of every neuron with `spikefab.sim.CoreModel`. The first mismatch fails the
test with a message naming the step, the neuron, the expected and the actual values.

One coroutine services all streams once per clock cycle (sampling at the rising edge, the
cocotbext-axi way), which keeps Python wake-ups to one per cycle.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque

import numpy as np

from spikefab.hw.layouts import (
    ConfigSpace,
    CoreOp,
    SpikeKind,
    command_layout,
    config_request_layout,
    config_response_layout,
    pack,
    spike_layout,
    unpack,
)
from spikefab.hw.synapse import synapse_word_bits
from spikefab.sim import CoreModel
from spikefab.spec import CoreConfig, NeuronParams, param_fields, state_fields, unpack_fields

from .cocotb_api import Clock, RisingEdge, cocotb
from .rtlsim import high, hold_reset


class StreamBench:
    """Drive and sample the core's four streams, one call of `cycle` per clock cycle."""

    def __init__(self, dut, cfg: CoreConfig, *, seed: int, gap_prob: float, stall_prob: float):
        self.dut, self.cfg = dut, cfg
        self.timing = random.Random(seed)
        self.gap_prob, self.stall_prob = gap_prob, stall_prob
        self.cmds: deque[int] = deque()
        self.requests: deque[int] = deque()
        self.responses: list[dict] = []
        self.outputs: list[dict] = []
        self.cycles = 0
        self.cmd_accept_cycles: list[int] = []
        self._cmd_valid = self._req_valid = False
        self._spike_ready = self._resp_ready = False
        self._spike_layout = spike_layout(cfg)
        self._resp_layout = config_response_layout(cfg)

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        await hold_reset(self.dut, 3, idle=("i_cmd__valid", "i_cfg__valid", "o_spike__ready",
                                            "o_cfg__ready"))

    def _ready_this_cycle(self) -> bool:
        return self.stall_prob == 0 or self.timing.random() >= self.stall_prob

    def _gap_this_cycle(self) -> bool:
        return self.gap_prob > 0 and self.timing.random() < self.gap_prob

    async def cycle(self):
        dut = self.dut
        await RisingEdge(dut.clk)
        self.cycles += 1
        # Sample the transfers that happened at this edge.
        if self._cmd_valid and high(dut.i_cmd__ready):
            self.cmds.popleft()
            self.cmd_accept_cycles.append(self.cycles)
            self._cmd_valid = False
        if self._req_valid and high(dut.i_cfg__ready):
            self.requests.popleft()
            self._req_valid = False
        if self._spike_ready and high(dut.o_spike__valid):
            word = dut.o_spike__payload.value.to_unsigned()
            self.outputs.append(dict(unpack(self._spike_layout, word), cycle=self.cycles))
        if self._resp_ready and high(dut.o_cfg__valid):
            self.responses.append(unpack(self._resp_layout, dut.o_cfg__payload.value.to_unsigned()))
        # Drive the next cycle; a valid, once raised, stays up with its payload until taken.
        if not self._cmd_valid and self.cmds and not self._gap_this_cycle():
            dut.i_cmd__payload.value = self.cmds[0]
            self._cmd_valid = True
        dut.i_cmd__valid.value = self._cmd_valid
        if not self._req_valid and self.requests and not self._gap_this_cycle():
            dut.i_cfg__payload.value = self.requests[0]
            self._req_valid = True
        dut.i_cfg__valid.value = self._req_valid
        self._spike_ready = self._ready_this_cycle()
        self._resp_ready = self._ready_this_cycle()
        dut.o_spike__ready.value = self._spike_ready
        dut.o_cfg__ready.value = self._resp_ready

    async def run_until(self, done, what: str, limit: int = 10_000_000):
        start = self.cycles
        while not done():
            if self.cycles - start > limit:
                raise AssertionError(f"timeout after {limit} cycles waiting for {what}")
            await self.cycle()

    # Config port ------------------------------------------------------------------------------

    async def transact(self, requests: list[tuple[bool, ConfigSpace, int, int]]) -> list[dict]:
        """Send (write, space, addr, data) requests; return their responses in order."""
        layout = config_request_layout(self.cfg)
        first = len(self.responses)
        for write, space, addr, data in requests:
            self.requests.append(pack(layout, write=write, space=space, addr=addr, data=data))
        want = first + len(requests)
        await self.run_until(lambda: len(self.responses) >= want, "config responses")
        return self.responses[first:want]

    # Command stream --------------------------------------------------------------------------

    def queue_step(self, axons):
        layout = command_layout(self.cfg)
        for axon in axons:
            self.cmds.append(pack(layout, op=CoreOp.EVENT, axon=int(axon)))
        self.cmds.append(pack(layout, op=CoreOp.TICK))


def _fail(message: str):
    raise AssertionError(message)


async def configure(bench: StreamBench, model: CoreModel, init_state, verify: bool):
    """Write weights, parameters and (optionally) state through the config port."""
    cfg = model.cfg
    word_bits = synapse_word_bits(cfg)
    k = cfg.weights_per_word
    weight_requests = []
    for axon in range(cfg.n_axons):
        row = model.weights[axon]
        for word in range(cfg.words_per_axon):
            mask = (1 << cfg.weight_width) - 1
            data = sum((int(w) & mask) << (lane * cfg.weight_width)
                       for lane, w in enumerate(row[word * k:(word + 1) * k]))
            weight_requests.append((True, ConfigSpace.WEIGHTS, (axon << word_bits) | word, data))
    param_requests = [(True, ConfigSpace.PARAMS, n, model.param_word(n))
                      for n in range(cfg.n_neurons)]
    state_requests = []
    if init_state is not None:
        state_requests = [(True, ConfigSpace.STATE, n, model.state_word(n))
                          for n in range(cfg.n_neurons)]
    responses = await bench.transact(weight_requests + param_requests + state_requests)
    for (_, space, addr, _), resp in zip(weight_requests + param_requests + state_requests,
                                         responses):
        if resp["error"]:
            _fail(f"config write to {space.name} address {addr} answered with an error")
    if verify:
        reads = [(False, space, addr, 0) for (_, space, addr, _) in weight_requests +
                 param_requests]
        responses = await bench.transact(reads)
        for (_, space, addr, _), (_, _, _, data), resp in zip(
                reads, weight_requests + param_requests, responses):
            if resp["error"] or resp["data"] != data:
                _fail(f"readback of {space.name} address {addr}: expected {data:#x}, "
                      f"got {resp['data']:#x} (error={resp['error']})")


async def compare_state(bench: StreamBench, model: CoreModel, step: int):
    cfg = model.cfg
    responses = await bench.transact([(False, ConfigSpace.STATE, n, 0)
                                      for n in range(cfg.n_neurons)])
    layout = state_fields(cfg)
    for n, resp in enumerate(responses):
        actual = unpack_fields(layout, resp["data"])
        expected = {"v": model.v[n], "i": model.i[n], "ref": model.ref[n]}
        for name, value in expected.items():
            if resp["error"] or actual[name] != value:
                _fail(f"step {step}, neuron {n}: {name} expected {value}, got {actual[name]}"
                      f" (error={resp['error']})")


def compare_spikes(step: int, core_step: int, outputs: list[dict], expected_ids,
                   cfg: CoreConfig):
    """Compare step `step`'s outputs; `core_step` is the core's own step count (reset by CLEAR)."""
    spikes = [o for o in outputs if o["kind"] == SpikeKind.SPIKE.value]
    step_field = core_step % (1 << cfg.step_width)
    actual_ids = [o["neuron"] for o in spikes]
    if actual_ids != [int(x) for x in expected_ids]:
        missing = sorted(set(map(int, expected_ids)) - set(actual_ids))
        extra = sorted(set(actual_ids) - set(map(int, expected_ids)))
        _fail(f"step {step}: spikes differ: expected {len(expected_ids)} "
              f"{list(map(int, expected_ids))[:16]}..., got {len(actual_ids)} {actual_ids[:16]}...;"
              f" missing neurons {missing[:16]}, unexpected neurons {extra[:16]}")
    for o in outputs:
        if o["step"] != step_field:
            _fail(f"step {step}: neuron {o['neuron']} output carries step {o['step']}, "
                  f"expected {step_field}")


def compare_status(dut, model: CoreModel, step: int):
    for name in ("dropped_bad_axon", "dropped_overflow"):
        actual = getattr(dut, f"o_status__{name}").value.to_unsigned()
        if actual != getattr(model, name):
            _fail(f"step {step}: status {name} expected {getattr(model, name)}, got {actual}")
    actual_step = dut.o_status__step.value.to_unsigned()
    if actual_step != model.step % (1 << model.cfg.step_width):
        _fail(f"step {step}: status step expected {model.step}, got {actual_step}")


def load_scenario():
    """The scenario run_scenario was given: (CoreConfig, options, NeuronParams, arrays)."""
    with np.load(os.environ["SPIKEFAB_SCENARIO"], allow_pickle=False) as f:
        sc = {k: f[k] for k in f.files}
    cfg = CoreConfig(**json.loads(str(sc["config_json"])))
    options = json.loads(str(sc["options_json"]))
    params = NeuronParams(**{fl.name: sc[f"param_{fl.name}"].astype(np.int64)
                             for fl in param_fields(cfg)})
    return cfg, options, params, sc


@cocotb.test()
async def run_scenario(dut):
    """Run a scenario step by step, checking everything against the golden model."""
    cfg, options, params, sc = load_scenario()
    seed = int(options.get("seed", 0))
    dut._log.info("scenario seed %d, config %s, options %s", seed, cfg, options)
    model = CoreModel(cfg, params, sc["weights"])
    init_state = None
    if "init_v" in sc:
        init_state = True
        model.v, model.i, model.ref = (sc["init_v"].astype(np.int64), sc["init_i"].astype(np.int64),
                                       sc["init_ref"].astype(np.int64))
    bench = StreamBench(dut, cfg, seed=seed, gap_prob=float(options.get("gap_prob", 0.0)),
                        stall_prob=float(options.get("stall_prob", 0.0)))
    events, offsets = sc["events"].astype(np.int64), sc["step_offsets"].astype(np.int64)
    result = {"spike_steps": [], "spike_neurons": [], "event_cycles": [], "tick_cycles": []}
    try:
        await bench.reset()
        await configure(bench, model, init_state, bool(options.get("verify_config", False)))
        n_steps = len(offsets) - 1
        clear_steps = set(options.get("clear_steps", []))
        for step in range(n_steps):
            await run_step(bench, model, step, events[offsets[step]:offsets[step + 1]],
                           bool(options.get("check_state", True)), result,
                           clear=step in clear_steps)
            if (step + 1) % max(1, n_steps // 10) == 0:
                dut._log.info("step %d/%d checked (%d cycles)", step + 1, n_steps, bench.cycles)
        result["final_v"], result["final_i"] = model.v, model.i
    except AssertionError as exc:
        result["failure"] = f"seed {seed}: {exc}"
        raise AssertionError(result["failure"]) from None
    finally:
        np.savez(os.environ["SPIKEFAB_RESULT"], **{k: np.asarray(v) for k, v in result.items()})


def clear_model(model: CoreModel):
    """What CLEAR does: zero the state, the accumulators, the step and the drop counters."""
    for array in (model.v, model.i, model.ref, model.acc):
        array[:] = 0
    model.step = model.events_this_step = model.dropped_bad_axon = model.dropped_overflow = 0


async def run_step(bench: StreamBench, model: CoreModel, step: int, axons, check_state: bool,
                   result: dict, clear: bool = False):
    first_output = len(bench.outputs)
    if clear:
        bench.cmds.append(pack(command_layout(model.cfg), op=CoreOp.CLEAR))
        clear_model(model)
    n_accepts = len(bench.cmd_accept_cycles) + clear
    bench.queue_step(axons)
    await bench.run_until(
        lambda: bench.outputs[first_output:] and
        bench.outputs[-1]["kind"] == SpikeKind.STEP_END.value, f"the end of step {step}")
    tick_accept = bench.cmd_accept_cycles[-1]
    first_accept = bench.cmd_accept_cycles[n_accepts]
    model.events(axons)
    core_step = model.step
    expected = model.tick()
    outputs = bench.outputs[first_output:]
    compare_spikes(step, core_step, outputs[:-1], expected, model.cfg)
    compare_status(bench.dut, model, step)
    if check_state:
        await compare_state(bench, model, step)
    result["spike_steps"].extend(step for o in outputs[:-1])
    result["spike_neurons"].extend(o["neuron"] for o in outputs[:-1])
    result["event_cycles"].append(tick_accept - first_accept)
    result["tick_cycles"].append(outputs[-1]["cycle"] - tick_accept)
