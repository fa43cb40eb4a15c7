# amaranth: UnusedElaboratable=no
"""The chip's gateware against its golden model, byte for byte, through the byte stream.

A host workflow (configure a network, stream inputs, tick, fetch, read back, bad requests and
garbage) runs against the model through a recording transport; the recorded request bytes are
then replayed into the gateware and every reply byte must equal the model's.
"""

import random
import struct

import numpy as np
import pytest
from garbage import garbage_chunk
from nets import all_to_all

from spikefab import protocol as P
from spikefab.host.link import ChipClient, ChipError, RecordingTransport
from spikefab.host.network import Network, SpikesLost, load, run, run_on_rtl
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig
from spikefab.verify.rtlsim import run_chip_exchange, run_cocotb

CFG = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=64, weights_per_word=4), n_cores=3,
                 n_inputs=16, route_entries=256, max_host_events=128, host_buffer=64)


def replay_on_gateware(transport, seed, gap=0.1, stall=0.2):
    return run_chip_exchange(CFG, transport.requests, transport.replies, seed=seed,
                             gap_prob=gap, stall_prob=stall)


def random_network(rng, recurrent):
    net = Network()
    inp = net.add_input("in", 12)
    a = net.add_population("a", 20, alpha=int(rng.integers(0, 4097)), beta=3800,
                           threshold=150, reset=1, refractory=1, record=True)
    b = net.add_population("b", 14, beta=3500, threshold=120, record=True)
    dense = rng.random
    net.connect(inp, a, rng.integers(-30, 110, (12, 20)) * (dense((12, 20)) < 0.4))
    net.connect(a, b, rng.integers(-40, 100, (20, 14)) * (dense((20, 14)) < 0.4))
    if recurrent:
        net.connect(b, a, rng.integers(-60, 60, (14, 20)) * (dense((14, 20)) < 0.3))
    return net


SMALL = ChipConfig(core=CoreConfig(n_neurons=10, n_axons=48, weights_per_word=1), n_cores=4,
                   n_inputs=12, route_entries=256, max_host_events=64, host_buffer=32)


#: A host buffer smaller than the 34 recorded neurons: steps with many spikes drop some.
TIGHT = ChipConfig(core=CoreConfig(n_neurons=24, n_axons=48, weights_per_word=2), n_cores=2,
                   n_inputs=12, route_entries=128, max_host_events=64, host_buffer=6)


@pytest.mark.parametrize("seed, recurrent, cfg", [(1, False, CFG), (2, True, CFG),
                                                  (3, True, SMALL), (4, True, TIGHT)])
def test_network_run_matches_model_byte_for_byte(seed, recurrent, cfg):
    """Feed-forward and recurrent networks across cores, three chip sizes, 200 steps each.

    On TIGHT the host buffer overflows: the drops must be counted, the same in both.
    """
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    transport = RecordingTransport(ChipModel(cfg))
    client = ChipClient(transport)
    net = random_network(rng, recurrent)
    image = net.compile(cfg)
    load(client, image)
    raster = (rng.random((200, 12)) < 0.2).astype(int)
    try:
        spikes = run(client, image, {"in": raster})
        assert cfg is not TIGHT, "the tight host buffer should have overflowed"
    except SpikesLost as lost:
        assert cfg is TIGHT and set(lost.counters) == {"host_dropped"}, lost
        spikes = lost.spikes
    assert sum(s.sum() for s in spikes.values()) > 50     # the run exercises the network
    word_bits = (cfg.core.words_per_axon - 1).bit_length()
    for axon in range(0, cfg.core.n_axons, 5):     # rows: N/K need not be a power of two
        client.read_weights(1, axon << word_bits, cfg.core.words_per_axon)
    client.read_params(0, 0, cfg.core.n_neurons)
    client.read_state(cfg.n_cores - 1, 0, cfg.core.n_neurons)
    client.read_route_index(0, cfg.n_sources)
    client.read_route_dest(0, 100)
    client.status()
    run_chip_exchange(cfg, transport.requests, transport.replies, seed=seed, gap_prob=0.1,
                      stall_prob=0.2)


def test_errors_garbage_and_recovery_match_model_byte_for_byte():
    seed = 7
    print(f"seed {seed}")
    rng = random.Random(seed)
    transport = RecordingTransport(ChipModel(CFG))
    client = ChipClient(transport)
    client.write_route_index(CFG.input_source(0), [(0, 3)])
    client.write_route_dest(0, [(0, 1), (2, 5), (P.HOST_CORE, 0)])
    client.write_regs(P.Reg.SCRATCH, [0xC0FFEE42])
    bad = [
        (P.Op.WRITE_WEIGHTS, bytes([3]) + struct.pack("<I", 0) + bytes(4)),
        (P.Op.WRITE_WEIGHTS, bytes([0]) + struct.pack("<I", 64 * 4 - 1) + bytes(8)),
        (P.Op.WRITE_WEIGHTS, bytes([0]) + struct.pack("<I", 0) + bytes(5)),
        (P.Op.READ_WEIGHTS, bytes([0]) + struct.pack("<IH", 0, 0)),
        (P.Op.READ_WEIGHTS, bytes([0]) + struct.pack("<IH", 0, 300)),
        (P.Op.WRITE_PARAMS, bytes([0]) + struct.pack("<H", 16) + bytes(8)),
        (P.Op.WRITE_PARAMS, bytes([0]) + struct.pack("<H", 0) + (4097).to_bytes(8, "little")),
        (P.Op.WRITE_STATE, bytes([1]) + struct.pack("<H", 0) + (1 << 36).to_bytes(5, "little")),
        (P.Op.WRITE_ROUTE_INDEX, struct.pack("<HHH", 0, 250, 7)),
        (P.Op.WRITE_ROUTE_INDEX, struct.pack("<HHH", CFG.n_sources, 0, 1)),
        (P.Op.WRITE_ROUTE_DEST, struct.pack("<HBH", 0, 3, 0)),
        (P.Op.WRITE_ROUTE_DEST, struct.pack("<HBH", 0, P.HOST_CORE, 1)),
        (P.Op.INPUT, struct.pack("<HH", 1, 16)),
        (P.Op.INPUT, b"\x01"),
        (P.Op.TICK, struct.pack("<H", 0)),
        (P.Op.FETCH, b"\x01"),
        (P.Op.IDENTIFY, b"\x00"),
        (P.Op.WRITE_REGS, struct.pack("<HI", P.N_REGS, 1)),
        (P.Op.WRITE_REGS, struct.pack("<H", 0) + bytes(3)),
        (P.Op.READ_REGS, struct.pack("<HH", 0, P.N_REGS + 1)),
        (0x7E, b""), (0x42, b"\x01\x02"),
    ]
    for op, args in bad:
        if isinstance(op, P.Op):
            with pytest.raises(ChipError):
                client.call(op, args)
        else:                                    # unknown opcodes
            transport.write(P.request(op, 1, args))
            assert P.decode_frame(transport.read_frame())[2] == P.Status.UNKNOWN_OP
    client.input([0] * 42)                       # 126 routed events: under the limit
    with pytest.raises(ChipError, match="LIMIT"):
        client.input([0])
    client.tick(3)
    client.fetch()
    good = P.request(P.Op.TICK, 9, b"\x01\x00")
    for _ in range(60):                          # garbage, flips, truncation, oversize
        _, chunk = garbage_chunk(rng, good)
        transport.write(chunk)
        transport._pending.clear()
    client.identify()
    # Everything the rejected requests and the garbage could have touched reads back unchanged
    # (the model's state is unchanged by them, and the gateware's replies equal the model's).
    for core in range(CFG.n_cores):
        client.read_weights(core, 0, 64 * 4)
        client.read_params(core, 0, 16)
        client.read_state(core, 0, 16)
    client.read_route_index(0, CFG.n_sources)
    client.read_route_dest(0, CFG.route_entries)
    client.reset()
    client.status()
    assert client.read_regs(0, P.N_REGS) == [0xC0FFEE42]     # kept by RESET
    replay_on_gateware(transport, seed, gap=0.3, stall=0.3)



def test_chip_over_uart_answers_like_the_model():
    """Bit-level UART in and out (divisor 4): identify, configure, run, read status."""
    from spikefab.hw.chip import ChipOverUART
    transport = RecordingTransport(ChipModel(CFG))
    client = ChipClient(transport)
    client.write_route_index(CFG.input_source(2), [(0, 2)])
    client.write_route_dest(0, [(1, 3), (P.HOST_CORE, 0)])
    client.write_weights(1, 3 << 2, [0x7F7F7F7F] * 4)
    client.write_params(1, 0, [1 << 26] * 16)            # threshold 1 (bits 26..40)
    client.input([2, 2])
    client.tick(2)
    assert client.fetch() == [(0, CFG.input_source(2))] * 2
    transport.write(b"\x11\x22\x00")                       # garbage: an error reply
    transport._pending.clear()
    client.status()
    chunks = transport.requests
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
    reply_offsets = np.concatenate([[0], np.cumsum([len(c) for c in transport.replies])])
    result = run_cocotb(ChipOverUART(CFG, divisor=4), "chip_uart",
                        "spikefab.verify.chip_bench", "uart_exchange",
                        {"divisor": np.array(4),
                         "requests": np.frombuffer(b"".join(chunks), dtype=np.uint8),
                         "request_offsets": offsets,
                         "replies": np.frombuffer(b"".join(transport.replies), dtype=np.uint8),
                         "reply_offsets": reply_offsets.astype(np.int64)})
    assert int(result["bytes"]) == int(reply_offsets[-1])


def test_uart_receive_overflow_is_counted_in_status():
    """A host that floods the UART while the chip runs a long TICK: the receive FIFO (one
    maximal frame) overflows, the loss is counted in READ_STATUS, and the chip answers on."""
    from spikefab.hw.chip import ChipOverUART
    seed = 5
    print(f"seed {seed}")
    busy = P.request(P.Op.TICK, 1, struct.pack("<H", 2000))
    busy_reply = ChipModel(CFG).feed(busy)
    flood = bytes(random.Random(seed).randrange(1, 256) for _ in range(P.MAX_ENCODED + 100))
    after = b"\x00" + P.request(P.Op.READ_STATUS, 2)
    result = run_cocotb(ChipOverUART(CFG, divisor=4), "chip_uart",
                        "spikefab.verify.chip_bench", "uart_flood",
                        {"divisor": np.array(4), "busy": np.frombuffer(busy, dtype=np.uint8),
                         "flood": np.frombuffer(flood, dtype=np.uint8),
                         "after": np.frombuffer(after, dtype=np.uint8),
                         "busy_reply_bytes": np.array(len(busy_reply)),
                         "max_cycles": np.array(400_000), "after_cycles": np.array(30_000)})
    got = result["got"].tobytes()
    assert got.startswith(busy_reply), got[:len(busy_reply)].hex()
    frames = [P.decode_frame(body) for body in got[len(busy_reply):].split(b"\x00")[:-1]]
    assert [f[:3] for f in frames] == [bytes([P.ERROR_OP, 0, P.Status.TOO_LONG]),
                                       bytes([P.Op.READ_STATUS | P.REPLY_FLAG, 2, P.Status.OK])]
    status = dict(zip(("step", "host_events", "host_pending", "host_dropped", "crc_errors",
                       "frame_errors", "uart_framing_errors", "uart_overflows"),
                      struct.unpack_from(P.STATUS_FORMAT, frames[1], 3)))
    assert status["step"] == 2000 and status["frame_errors"] == 1, status
    # The FIFO held one maximal frame while the chip was busy; the rest of the flood was lost.
    assert 0 < status["uart_overflows"] <= len(flood) - P.MAX_ENCODED, status


def test_run_on_rtl_returns_the_reference_spikes():
    """The user-facing entry point: a network run on the simulated gateware."""
    rng = np.random.default_rng(4)
    net = random_network(rng, recurrent=True)
    raster = (rng.random((60, 12)) < 0.25).astype(int)
    got = run_on_rtl(net.compile(SMALL), {"in": raster})
    want = net.reference(SMALL.core, {"in": raster}, 60)
    assert all((got[name] == want[name]).all() for name in want)
    assert sum(w.sum() for w in want.values()) > 10


def test_all_to_all_recurrent_full_fan_out_on_gateware():
    """No deadlock in the gateware: every neuron projects to every neuron and to the host.

    Each step routes up to 64 x 5 destinations into 16-deep command FIFOs, so the router is
    back-pressured by busy cores throughout; every reply byte must still equal the model's.
    """
    cfg = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=80, weights_per_word=4), n_cores=4,
                     n_inputs=4, route_entries=512, max_host_events=64, host_buffer=128)
    net = all_to_all()
    raster = np.ones((20, 4), dtype=int)
    got = run_on_rtl(net.compile(cfg), {"in": raster})
    assert (got["all"] == net.reference(cfg.core, {"in": raster}, 20)["all"]).all()
    assert got["all"].sum() > 64 * 8
