"""The chip's golden model through its byte protocol: networks, tables, errors, fuzzing."""

import random
import struct

import numpy as np
import pytest
from garbage import garbage_chunk
from nets import all_to_all

from spikefab import protocol as P
from spikefab.host.link import ChipClient, ChipError, ModelTransport
from spikefab.host.network import Network, NetworkDoesNotFit, SpikesLost, load, run
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig

SMALL = ChipConfig(core=CoreConfig(n_neurons=32, n_axons=128, weights_per_word=4), n_cores=3,
                   n_inputs=48, route_entries=1024, max_host_events=512, host_buffer=256)


def client_for(cfg=SMALL):
    return ChipClient(ModelTransport(ChipModel(cfg)))


def snapshot(model: ChipModel):
    """Everything a request may change."""
    cores = [(c.weights.copy(), [getattr(c.params, f).copy() for f in
                                 ("alpha", "beta", "threshold", "bias", "refractory", "reset")],
              c.v.copy(), c.i.copy(), c.ref.copy(), c.acc.copy(), c.events_this_step,
              c.dropped_bad_axon, c.dropped_overflow) for c in model.cores]
    return (cores, model.route_start.copy(), model.route_count.copy(), model.dest_core.copy(),
            model.dest_axon.copy(), model.step, model.host_events, list(model.host_out))


def assert_same(a, b):
    def flat(x):
        if isinstance(x, (list, tuple)):
            return [y for item in x for y in flat(item)]
        return [np.asarray(x).tolist()]
    assert flat(a) == flat(b)


def random_network(rng, n_in, sizes, density=0.3, recurrent=True):
    net = Network()
    inp = net.add_input("in", n_in)
    pops = [net.add_population(f"p{k}", size, alpha=int(rng.integers(0, 4097)),
                               beta=int(rng.integers(2048, 4097)),
                               threshold=int(rng.integers(100, 400)),
                               reset=int(rng.integers(0, 2)), refractory=int(rng.integers(0, 3)),
                               record=True)
            for k, size in enumerate(sizes)]

    def weights(a, b):
        return rng.integers(-60, 100, (a.size, b.size)) * (rng.random((a.size, b.size)) < density)
    net.connect(inp, pops[0], weights(inp, pops[0]))
    for a, b in zip(pops, pops[1:]):
        net.connect(a, b, weights(a, b))
    if recurrent:
        if len(pops) > 1:
            net.connect(pops[-1], pops[0], weights(pops[-1], pops[0]))
        net.connect(pops[0], pops[0], weights(pops[0], pops[0]))
    return net


@pytest.mark.parametrize("seed, sizes, recurrent", [
    (1, [20, 10], False), (2, [40, 30, 20], True), (3, [80], True),
])
def test_network_on_chip_model_equals_direct_reference(seed, sizes, recurrent):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    net = random_network(rng, 40, sizes, recurrent=recurrent)
    image = net.compile(SMALL)
    client = client_for()
    load(client, image)
    raster = (rng.random((200, 40)) < 0.15).astype(int)
    got = run(client, image, {"in": raster})
    want = net.reference(SMALL.core, {"in": raster}, 200)
    for name in want:
        assert want[name].sum() > 0, f"population {name} never fires: the test checks nothing"
        mismatch = np.argwhere(got[name] != want[name])
        assert not len(mismatch), f"{name}: first mismatch (step, neuron) {mismatch[0]}"
    status = client.status()
    assert status["host_dropped"] == 0 and status["step"] == 200


def test_all_to_all_recurrent_full_fan_out_completes_without_loss():
    """Every neuron of every core projects to every neuron; every spike also goes to the host."""
    cfg = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=128), n_cores=4, n_inputs=4,
                     route_entries=512, max_host_events=64, host_buffer=4096)
    net = all_to_all()
    image = net.compile(cfg)
    assert len(image.route_dest) == 64 * 5 + 4 * 4   # neurons: 4 cores + host; inputs: 4 cores
    client = client_for(cfg)
    load(client, image)
    raster = np.ones((50, 4), dtype=int)
    got = run(client, image, {"in": raster})
    assert (got["all"] == net.reference(cfg.core, {"in": raster}, 50)["all"]).all()
    assert got["all"].sum() > 64 * 20
    assert client.status()["host_dropped"] == 0


def test_network_that_does_not_fit_names_the_resource():
    net = Network()
    net.add_population("big", SMALL.n_cores * SMALL.core.n_neurons + 1)
    with pytest.raises(NetworkDoesNotFit, match="97 neurons, the chip 96"):
        net.compile(SMALL)
    net = Network()
    inp = net.add_input("in", 48)
    a = net.add_population("a", 32)
    b = net.add_population("b", 32)
    c = net.add_population("c", 32)
    net.connect(inp, c, np.ones((48, 32), dtype=int))
    net.connect(a, c, np.ones((32, 32), dtype=int))
    net.connect(b, c, np.ones((32, 32), dtype=int))
    net.connect(c, c, np.ones((32, 32), dtype=int))
    with pytest.raises(NetworkDoesNotFit, match="core 2 needs more than 128 axons"):
        net.compile(SMALL)


def test_bulk_weight_and_route_table_write_readback():
    rng = np.random.default_rng(4)
    client = client_for()
    words = [int(w) for w in rng.integers(0, 1 << 32, 128 * 8)]   # every word of core 2
    client.write_weights(2, 0, words)
    assert client.read_weights(2, 0, len(words)) == words
    index = [(int(s), int(c)) for s, c in zip(rng.integers(0, 512, SMALL.n_sources),
                                              rng.integers(0, 512, SMALL.n_sources))]
    client.write_route_index(0, index)
    assert client.read_route_index(0, SMALL.n_sources) == index
    dests = [(int(rng.integers(0, 3)), int(rng.integers(0, 128))) for _ in range(1024)]
    dests[::7] = [(P.HOST_CORE, 0)] * len(dests[::7])
    client.write_route_dest(0, dests)
    assert client.read_route_dest(0, 1024) == dests


def test_registers_write_readback_and_survive_reset():
    client = client_for()
    assert client.read_regs(0, P.N_REGS) == [0] * P.N_REGS
    client.write_regs(P.Reg.SCRATCH, [0xDEADBEEF])
    client.reset()
    assert client.read_regs(P.Reg.SCRATCH, 1) == [0xDEADBEEF]
    for op, args, status in [
        (P.Op.WRITE_REGS, struct.pack("<HI", P.N_REGS, 1), P.Status.BAD_ADDRESS),
        (P.Op.WRITE_REGS, struct.pack("<H", 0) + bytes(3), P.Status.BAD_LENGTH),
        (P.Op.READ_REGS, struct.pack("<HH", 0, P.N_REGS + 1), P.Status.BAD_ADDRESS),
        (P.Op.READ_REGS, struct.pack("<HH", 0, 0), P.Status.BAD_LENGTH),
    ]:
        with pytest.raises(ChipError, match=status.name):
            client.call(op, args)
    assert client.read_regs(P.Reg.SCRATCH, 1) == [0xDEADBEEF]


BAD_REQUESTS = [
    (P.Op.WRITE_WEIGHTS, bytes([3]) + struct.pack("<I", 0) + bytes(4), P.Status.BAD_ADDRESS),
    (P.Op.WRITE_WEIGHTS, bytes([0]) + struct.pack("<I", 127 * 8 + 7) + bytes(8),
     P.Status.BAD_ADDRESS),                                    # runs past the last word
    (P.Op.WRITE_WEIGHTS, bytes([0]) + struct.pack("<I", 0) + bytes(5), P.Status.BAD_LENGTH),
    (P.Op.READ_WEIGHTS, bytes([0]) + struct.pack("<IH", 0, 0), P.Status.BAD_LENGTH),
    (P.Op.READ_WEIGHTS, bytes([0]) + struct.pack("<IH", 0, 300), P.Status.BAD_LENGTH),
    (P.Op.WRITE_PARAMS, bytes([0]) + struct.pack("<H", 32) + bytes(8), P.Status.BAD_ADDRESS),
    (P.Op.WRITE_PARAMS, bytes([0]) + struct.pack("<H", 0) + (4097).to_bytes(8, "little"),
     P.Status.BAD_VALUE),                                      # alpha above 2**F
    (P.Op.WRITE_STATE, bytes([1]) + struct.pack("<H", 0) + (1 << 36).to_bytes(5, "little"),
     P.Status.BAD_VALUE),                                      # bits beyond the state word
    (P.Op.WRITE_ROUTE_INDEX, struct.pack("<HHH", 0, 1000, 25), P.Status.BAD_VALUE),
    (P.Op.WRITE_ROUTE_INDEX, struct.pack("<HHH", 144, 0, 1), P.Status.BAD_ADDRESS),
    (P.Op.WRITE_ROUTE_DEST, struct.pack("<HBH", 0, 3, 0), P.Status.BAD_VALUE),
    (P.Op.WRITE_ROUTE_DEST, struct.pack("<HBH", 0, 0, 128), P.Status.BAD_VALUE),
    (P.Op.WRITE_ROUTE_DEST, struct.pack("<HBH", 1024, 0, 0), P.Status.BAD_ADDRESS),
    (P.Op.INPUT, struct.pack("<HH", 1, 48), P.Status.BAD_ADDRESS),
    (P.Op.INPUT, b"\x01", P.Status.BAD_LENGTH),
    (P.Op.TICK, struct.pack("<H", 0), P.Status.BAD_VALUE),
    (P.Op.TICK, b"", P.Status.BAD_LENGTH),
    (P.Op.FETCH, b"\x01\x00\x00", P.Status.BAD_LENGTH),
    (P.Op.IDENTIFY, b"\x00", P.Status.BAD_LENGTH),
]


@pytest.mark.parametrize("op, args, status", BAD_REQUESTS,
                         ids=[f"{op.name}-{status.name}-{i}" for i, (op, _, status)
                              in enumerate(BAD_REQUESTS)])
def test_rejected_requests_report_their_status_and_change_nothing(op, args, status):
    client = client_for()
    client.write_route_index(SMALL.input_source(1), [(0, 1)])
    client.write_route_dest(0, [(0, 5)])
    model = client.transport.model
    before = snapshot(model)
    with pytest.raises(ChipError) as info:
        client.call(op, args)
    assert info.value.status == status
    assert_same(before, snapshot(model))


def test_input_limit_per_step_is_all_or_nothing():
    client = client_for()
    client.write_route_index(SMALL.input_source(0), [(0, 4)])
    client.write_route_dest(0, [(0, 1), (1, 1), (2, 1), (P.HOST_CORE, 0)])
    client.input([0] * 128)                     # 512 routed events: exactly the limit
    model = client.transport.model
    before = snapshot(model)
    with pytest.raises(ChipError, match="LIMIT"):
        client.input([0])
    assert_same(before, snapshot(model))
    client.tick()
    client.input([0])                           # the limit is per step


def test_unknown_opcode_and_reply_flag():
    client = client_for()
    for op in (0x00, 0x7E, 0x81):
        client.transport.write(P.request(op, 9))
        payload = P.decode_frame(client.transport.read_frame())
        assert payload == P.reply_payload(op & 0x7F, 9, P.Status.UNKNOWN_OP)


def test_fuzzed_bytes_never_hang_and_leave_state_unchanged():
    """Random bytes, bit flips, truncations, oversize frames, back-to-back errors."""
    seed = 20261124
    print(f"seed {seed}")
    rng = random.Random(seed)
    client = client_for()
    model = client.transport.model
    client.write_weights(0, 0, [0x01020304] * 16)
    before = snapshot(model)
    good = P.request(P.Op.WRITE_PARAMS, 1, bytes([0]) + struct.pack("<H", 3) + bytes(8))
    for trial in range(400):
        kind, junk = garbage_chunk(rng, good)
        replies = model.feed(junk)
        for body in replies.split(b"\x00")[:-1]:
            payload = P.decode_frame(body)           # every reply is itself a valid frame
            # CRC-16 catches every single-bit flip; nothing in this seeded junk is a request.
            assert payload[2] != P.Status.OK, (trial, kind, payload.hex())
        # A well-formed request is answered afterwards.
        assert client.identify().config == SMALL
    status = client.status()
    assert status["crc_errors"] + status["frame_errors"] > 300
    assert_same(before, snapshot(model))


def test_run_reports_spikes_the_host_buffer_could_not_hold():
    """Every input spikes every neuron: 8 recorded spikes per step into a buffer of 3."""
    cfg = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=8, weights_per_word=1), n_cores=1,
                     n_inputs=1, route_entries=16, max_host_events=8, host_buffer=3)
    net = Network()
    inp = net.add_input("in", 1)
    out = net.add_population("out", 8, beta=0, threshold=10, record=True)
    net.connect(inp, out, np.full((1, 8), 100))
    image = net.compile(cfg)
    client = client_for(cfg)
    load(client, image)
    with pytest.raises(SpikesLost, match=r"host_dropped \+15") as lost:
        run(client, image, {"in": np.ones((3, 1), dtype=int)})
    assert lost.value.counters == {"host_dropped": 15}
    assert lost.value.spikes["out"].sum() == 9          # 3 kept per step, in neuron order
    assert lost.value.spikes["out"][:, :3].all()
