# amaranth: UnusedElaboratable=no
"""Small blocks under Amaranth's own simulator, in-process (`spikefab.verify.amsim`).

Each test drives one block with seeded random traffic (random gaps and back-pressure) and checks
it against a reference computed in Python: the spec's numerics, `protocol.encode_frame` /
`decode_frame`, or the queue and routing rules its docstring states. No Verilog, no build.
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data

from spikefab import protocol as P
from spikefab.hw.arith import mul_decay, saturate
from spikefab.hw.delivery import Delivery
from spikefab.hw.fifo import StreamFIFO
from spikefab.hw.framing import FrameReceiver, FrameTransmitter
from spikefab.hw.layouts import CoreOp
from spikefab.hw.router import Router
from spikefab.hw.synapse import SynapseMemory, synapse_word_bits
from spikefab.hw.uart import UARTReceiver, UARTTransmitter
from spikefab.sim.lif import lif_update
from spikefab.spec import ChipConfig, CoreConfig, NeuronParams
from spikefab.spec import mul_decay as model_mul_decay
from spikefab.spec import saturate as model_saturate
from spikefab.verify.amsim import get, put, simulate
from spikefab.verify.harness import NeuronStageHarness


def rng_for(seed: int) -> np.random.Generator:
    print(f"seed {seed}")
    return np.random.default_rng(seed)


def as_dict(value) -> dict:
    """A sampled struct value as a dict of ints (enum fields by their value)."""
    return {name: int(getattr(value[name], "value", value[name])) for name, _ in value.shape()}


# Arithmetic ------------------------------------------------------------------------------------

def test_saturate_and_mul_decay_equal_the_spec():
    rng = rng_for(11)
    frac = 12
    value, factor = Signal(signed(20)), Signal(frac + 1)
    decayed, clamped = Signal(signed(21)), Signal(signed(12))
    m = Module()
    m.d.comb += [decayed.eq(mul_decay(value, factor, frac)), clamped.eq(saturate(value, 12))]
    values = np.concatenate([rng.integers(-(1 << 19), 1 << 19, 400),
                             [-(1 << 19), (1 << 19) - 1, -1, 0, 1, -2049, 2048, -2048, 2047]])
    factors = rng.integers(0, (1 << frac) + 1, len(values))
    factors[:5] = [0, 1, 1 << frac, (1 << frac) - 1, 1 << (frac - 1)]

    async def bench(ctx):
        for v, f in zip(values, factors):
            ctx.set(value, int(v))
            ctx.set(factor, int(f))
            want_decay = int(model_mul_decay(np.int64(v), np.int64(f), frac))
            want_sat = int(model_saturate(np.int64(v), 12))
            assert ctx.get(decayed) == want_decay, f"mul_decay({v}, {f}): {ctx.get(decayed)}"
            assert ctx.get(clamped) == want_sat, f"saturate({v}, 12): {ctx.get(clamped)}"

    simulate(m, bench, clock=False)


# Neuron stage ----------------------------------------------------------------------------------

def test_neuron_stage_equals_the_model_one_cycle_later():
    """The core's neuron stage (latency 1) against `sim.lif.lif_update`, one random neuron per
    cycle."""
    rng = rng_for(12)
    cfg = CoreConfig(n_neurons=64, n_axons=4, weights_per_word=2, voltage_width=12,
                     current_width=12, decay_width=8, refractory_width=3)
    n, one = 300, cfg.decay_one
    v_lo, v_hi = cfg.voltage_range
    i_lo, i_hi = cfg.current_range
    params = NeuronParams(alpha=rng.integers(0, one + 1, n), beta=rng.integers(0, one + 1, n),
                          threshold=rng.integers(0, v_hi // 2, n), bias=rng.integers(-50, 50, n),
                          refractory=rng.integers(0, 8, n), reset=rng.integers(0, 2, n))
    v, i = rng.integers(v_lo, v_hi + 1, n), rng.integers(i_lo, i_hi + 1, n)
    ref = np.where(rng.random(n) < 0.3, rng.integers(1, 8, n), 0)
    acc = rng.integers(-3000, 3000, n)
    # Neurons whose membrane sum lands exactly on, or one above, the threshold (V > threshold
    # spikes): no decay, no bias, acc = threshold (+ 1).
    edge = slice(0, 40)
    params.alpha[edge] = params.beta[edge] = params.bias[edge] = 0
    ref[edge] = 0
    acc[edge] = params.threshold[edge] + np.arange(40) % 2
    v2, i2, ref2, spike, v_sum, refractory = lif_update(cfg, params, v, i, ref, acc, detail=True)
    assert 0 < spike.sum() < n and spike[edge].sum() == 20
    dut = NeuronStageHarness(cfg)

    async def bench(ctx):
        for j in range(n):
            ctx.set(dut.state, {"v": int(v[j]), "i": int(i[j]), "ref": int(ref[j])})
            ctx.set(dut.params, {f: int(getattr(params, f)[j]) for f in
                                 ("alpha", "beta", "threshold", "bias", "refractory", "reset")})
            ctx.set(dut.acc, int(acc[j]))
            await ctx.tick()            # the clock edge that takes neuron j into the register
            ctx.set(dut.acc, 0)         # the outputs no longer depend on the inputs
            got = as_dict(ctx.get(dut.next_state))
            want = {"v": int(v2[j]), "i": int(i2[j]), "ref": int(ref2[j])}
            assert got == want, f"neuron {j}: state {got}, model {want}"
            assert ctx.get(dut.spike) == spike[j], f"neuron {j}: spike"
            assert ctx.get(dut.v_sum) == v_sum[j], f"neuron {j}: v_sum"
            assert ctx.get(dut.refractory) == refractory[j], f"neuron {j}: refractory"
            assert ctx.get(dut.threshold) == params.threshold[j], f"neuron {j}: threshold"

    simulate(dut, bench)


# Queues ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 5])
def test_stream_fifo_keeps_order_and_bounds(depth):
    rng = rng_for(20 + depth)
    items = [int(x) for x in rng.integers(0, 1 << 10, 120)]
    layout = data.StructLayout({"a": 4, "b": signed(6)})
    dut = StreamFIFO(layout, depth)
    got, levels = [], []

    async def producer(ctx):
        for item in items:
            await put(ctx, dut.i, {"a": item & 15, "b": (item >> 4) - 32 if item >> 9 else
                                   item >> 4}, rng=rng, gap=0.3)

    async def consumer(ctx):
        for _ in items:
            got.append(as_dict(await get(ctx, dut.o, rng=rng, stall=0.5)))

    async def monitor(ctx):
        async for _, _, level in ctx.tick().sample(dut.level):
            levels.append(level)

    simulate(dut, producer, consumer, processes=[monitor])
    want = [{"a": x & 15, "b": (x >> 4) - 32 if x >> 9 else x >> 4} for x in items]
    assert got == want
    assert max(levels) <= depth and (depth == 1 or max(levels) == depth)


def test_delivery_keeps_each_cores_order_and_drops_host_events_past_the_buffer():
    """Router events and engine commands reach each core's FIFO in arrival order (engine
    commands in every one); host events beyond `host_buffer` are dropped and counted."""
    rng = rng_for(30)
    cfg = ChipConfig(core=CoreConfig(n_neurons=4, n_axons=8), n_cores=3, n_inputs=2,
                     route_entries=16, max_host_events=16, host_buffer=5)
    dut = Delivery(cfg, cmd_depth=3)
    traffic = []
    for _ in range(90):
        if rng.random() < 0.2:
            traffic.append(("engine", int(rng.choice([CoreOp.TICK.value, CoreOp.CLEAR.value]))))
        else:
            traffic.append(("event", int(rng.integers(cfg.n_cores)), int(rng.integers(8))))
    want = [[] for _ in range(cfg.n_cores)]
    for item in traffic:
        for c in range(cfg.n_cores):
            if item[0] == "engine":
                want[c].append({"op": item[1], "axon": 0})
            elif item[1] == c:
                want[c].append({"op": CoreOp.EVENT.value, "axon": item[2]})
    got = [[] for _ in range(cfg.n_cores)]
    host_sources = [int(s) for s in rng.integers(0, 1 << 16, 9)]
    host_got = []

    async def producer(ctx):
        for item in traffic:
            if item[0] == "engine":
                await put(ctx, dut.i_engine, {"op": item[1], "axon": 0}, rng=rng, gap=0.2)
            else:
                await put(ctx, dut.i_event, {"core": item[1], "axon": item[2]}, rng=rng,
                          gap=0.2)

    def consumer(c):
        async def bench(ctx):
            for _ in want[c]:
                got[c].append(as_dict(await get(ctx, dut.o_cmd[c], rng=rng, stall=0.6)))
        return bench

    async def host(ctx):
        for step, source in enumerate(host_sources):
            ctx.set(dut.step, 1000 + step)
            await put(ctx, dut.i_host, source)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.host_level) == cfg.host_buffer
        assert ctx.get(dut.host_dropped) == len(host_sources) - cfg.host_buffer
        for _ in range(cfg.host_buffer):
            host_got.append(as_dict(await get(ctx, dut.o_host, rng=rng, stall=0.3)))
        await ctx.tick().repeat(3)
        assert ctx.get(dut.host_level) == 0 and not ctx.get(dut.o_host.valid)

    simulate(dut, producer, host, *(consumer(c) for c in range(cfg.n_cores)))
    assert got == want
    assert host_got == [{"step": 1000 + k, "source": s}
                        for k, s in enumerate(host_sources[:cfg.host_buffer])]


# Router ----------------------------------------------------------------------------------------

def test_router_multicasts_every_source_through_its_route_entries_in_order():
    rng = rng_for(40)
    cfg = ChipConfig(core=CoreConfig(n_neurons=4, n_axons=8), n_cores=2, n_inputs=4,
                     route_entries=40, max_host_events=16, host_buffer=8)
    dut = Router(cfg)
    index, dests, entry = [], [], 0
    for _ in range(cfg.n_sources):
        count = int(rng.integers(0, 4))
        index.append((entry, count))
        for _ in range(count):
            core = int(rng.choice([0, 1, P.HOST_CORE]))
            dests.append((core, int(rng.integers(8))))
        entry += count
    sources = [int(s) for s in rng.integers(0, cfg.n_sources + 3, 60)]
    events, host = [], []
    for s in sources:
        if s < cfg.n_sources:
            start, count = index[s]
            for core, axon in dests[start:start + count]:
                (host.append(s) if core == P.HOST_CORE else
                 events.append({"core": core, "axon": axon}))
    bad = sum(s >= cfg.n_sources for s in sources)
    got_events, got_host = [], []

    async def tables_then_sources(ctx):
        for port, rows in ((dut.index, [{"start": a, "count": b} for a, b in index]),
                           (dut.dest, [{"core": a, "axon": b} for a, b in dests])):
            for addr, row in enumerate(rows):
                ctx.set(port.addr, addr)
                ctx.set(port.w_data, row)
                ctx.set(port.w_en, 1)
                await ctx.tick()
            ctx.set(port.w_en, 0)
        for s in sources:
            await put(ctx, dut.i_source, s, rng=rng, gap=0.3)
        await ctx.tick().until(~dut.busy)
        assert ctx.get(dut.bad_source) == bad

    async def take_events(ctx):
        for _ in events:
            got_events.append(as_dict(await get(ctx, dut.o_event, rng=rng, stall=0.4)))

    async def take_host(ctx):
        for _ in host:
            got_host.append(await get(ctx, dut.o_host, rng=rng, stall=0.4))

    simulate(dut, tables_then_sources, take_events, take_host)
    assert len(events) > 20 and len(host) > 5 and bad > 0
    assert got_events == events
    assert got_host == host


# Synapse memory (behavioural twin of the SPRAM one) -------------------------------------------

def test_synapse_memory_reads_one_cycle_later_and_holds_its_read_data():
    rng = rng_for(50)
    cfg = CoreConfig(n_neurons=6, n_axons=5, weights_per_word=3, weight_width=5)
    dut = SynapseMemory(cfg, kind="memory")
    port, width = dut.port, cfg.weights_per_word * cfg.weight_width
    depth = cfg.n_axons << synapse_word_bits(cfg)
    shadow = {}

    async def bench(ctx):
        assert ctx.get(dut.ready)
        for _ in range(400):
            addr = int(rng.integers(depth))
            op = rng.choice(["read", "write", "idle"])
            ctx.set(port.addr, addr)
            ctx.set(port.r_en, op == "read")
            ctx.set(port.w_en, op == "write")
            word = int(rng.integers(1 << width))
            ctx.set(port.w_data, word)
            await ctx.tick()
            ctx.set(port.r_en, 0)
            ctx.set(port.w_en, 0)
            if op == "write":
                shadow[addr] = word
            elif op == "read":
                expected = shadow.get(addr, 0)
                assert ctx.get(port.r_data) == expected, f"read {addr}"
                await ctx.tick()                # no access: the read data holds
                assert ctx.get(port.r_data) == expected, f"read {addr} did not hold"

    simulate(dut, bench)


# Framing ---------------------------------------------------------------------------------------

def _payloads(rng):
    sizes = [0, 1, 2, 253, 254, 255, 600, P.MAX_PAYLOAD] + [int(x) for x in
                                                            rng.integers(0, 40, 6)]
    payloads = []
    for size in sizes:
        body = rng.integers(0, 256, size)
        body[rng.random(size) < 0.2] = 0       # plenty of zeros for COBS
        payloads.append(bytes(int(b) for b in body))
    payloads.append(bytes(300))                 # all zeros
    payloads.append(bytes([7]) * 600)           # no zeros: several full COBS groups
    return payloads


def test_frame_transmitter_sends_what_encode_frame_returns():
    rng = rng_for(60)
    payloads = _payloads(rng)
    dut = FrameTransmitter()
    sent = []

    async def bench(ctx):
        for payload in payloads:
            for byte in payload:
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_data, byte)
                await ctx.tick()
            ctx.set(dut.w_en, 0)
            ctx.set(dut.send, 1)
            await ctx.tick()
            ctx.set(dut.send, 0)
            frame = bytearray()
            while not frame or frame[-1] != P.DELIMITER:
                frame.append(await get(ctx, dut.o, rng=rng, stall=0.2))
            sent.append(bytes(frame))
            await ctx.tick().until(~dut.busy)

    simulate(dut, bench)
    assert sent == [P.encode_frame(p) for p in payloads]


def _frame_status(body: bytes) -> int:
    try:
        P.decode_frame(body)
    except P.FrameError as exc:
        return int(exc.status)
    return int(P.Status.OK)


def test_frame_receiver_reports_what_decode_frame_decides():
    """Good frames come out byte for byte; damaged ones (a flipped byte, a cut, a body over
    MAX_ENCODED) get `decode_frame`'s status."""
    rng = rng_for(61)
    frames = []
    for payload in _payloads(rng)[:10]:
        body = P.encode_frame(payload)[:-1]
        frames.append((body, payload))
        if len(payload) > 300:
            continue                            # damage short frames only: the sim is slow
        damaged = bytearray(body)
        k = int(rng.integers(len(damaged)))
        damaged[k] = (damaged[k] ^ int(rng.integers(1, 256))) or 1    # never a delimiter
        frames.append((bytes(damaged), None))
        frames.append((body[:int(rng.integers(1, len(body)))], None))
    frames.append((bytes([5]) * (P.MAX_ENCODED + 3), None))
    dut = FrameReceiver()
    got = []

    async def sender(ctx):
        await put(ctx, dut.i, P.DELIMITER)
        for body, _ in frames:
            for byte in body + bytes([P.DELIMITER]):
                await put(ctx, dut.i, byte, rng=rng, gap=0.1)

    async def reader(ctx):
        for _ in frames:
            frame = as_dict(await get(ctx, dut.o_frame, rng=rng, stall=0.2))
            data = bytearray()
            if frame["status"] == P.Status.OK:
                for addr in range(frame["length"]):
                    ctx.set(dut.buf_addr, addr)
                    await ctx.tick()
                    data.append(ctx.get(dut.buf_data))
            got.append((frame["status"], bytes(data)))

    simulate(dut, sender, reader)
    want = [(status, payload if status == P.Status.OK else b"")
            for status, payload in ((_frame_status(body), payload) for body, payload in frames)]
    assert [s for s, _ in got] == [s for s, _ in want]
    assert got == want
    assert {s for s, _ in want} >= {P.Status.OK, P.Status.BAD_CRC, P.Status.BAD_FRAME,
                                    P.Status.TOO_LONG}


# UART ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_loop_carries_bytes_with_exact_bit_timing(divisor):
    """Transmitter into receiver: every byte arrives, every bit lasts `divisor` cycles."""
    rng = rng_for(70 + divisor)
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor)
    m.submodules.rx = rx = UARTReceiver(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [int(b) for b in rng.integers(0, 256, 24)]
    got, runs = [], []

    async def sender(ctx):
        for byte in sent:
            await put(ctx, tx.i, byte, rng=rng, gap=0.02)

    async def receiver(ctx):
        for _ in sent:
            got.append(await get(ctx, rx.o))
        assert ctx.get(rx.framing_errors) == 0 and ctx.get(rx.overflow) == 0

    async def line(ctx):
        level, length = 1, 0
        async for _, _, value in ctx.tick().sample(tx.tx):
            if value == level:
                length += 1
            else:
                runs.append((level, length))
                level, length = value, 1

    simulate(m, sender, receiver, processes=[line])
    assert got == sent
    # Every run of equal bits between two edges (idle excluded) is a whole number of bits.
    bits = [length for level, length in runs[1:] if not (level == 1 and length > 9 * divisor)]
    assert bits and all(length % divisor == 0 for length in bits), runs[:20]


def test_uart_receiver_counts_a_framing_error_and_drops_the_byte():
    divisor = 4
    dut = UARTReceiver(divisor)
    got = []

    async def line(ctx):
        await ctx.tick().repeat(3 * divisor)
        for byte, stop in ((0x5A, 0), (0xC3, 1)):
            for bit in [0] + [byte >> k & 1 for k in range(8)] + [stop]:
                ctx.set(dut.rx, bit)
                await ctx.tick().repeat(divisor)
            ctx.set(dut.rx, 1)
            await ctx.tick().repeat(3 * divisor)
        assert ctx.get(dut.framing_errors) == 1

    async def take(ctx):
        got.append(await get(ctx, dut.o))

    simulate(dut, line, take)
    assert got == [0xC3]
