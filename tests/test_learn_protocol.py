"""Learning over the host protocol, on the chip model: encodings, refusals, and a learning run
driven entirely through WRITE_LEARN / INPUT / TICK that equals `PlasticCoreModel` driven directly.
"""

import struct

import numpy as np
import pytest
from learnrun import (
    random_rule,
    read_learning_state,
    send_teaching,
    setup_chip,
    step_inputs,
    step_teaching,
)

from spikefab import protocol as P
from spikefab.host import learning as L
from spikefab.host.link import ChipClient, ChipError, ModelTransport
from spikefab.learning import (
    RULES,
    LearnRegisters,
    Reg,
    Region,
    bounds_word,
    rule_registers,
)
from spikefab.sim import ChipModel
from spikefab.sim.plasticity import PlasticCoreModel
from spikefab.spec import ChipConfig, CoreConfig

CORE = CoreConfig(n_neurons=8, n_axons=16, weights_per_word=2)
ONE = ChipConfig(core=CORE, n_cores=1, n_inputs=16, route_entries=64, max_host_events=32,
                 host_buffer=32, plastic=True)
#: Core 1 plastic, core 0 not.
MIXED = ChipConfig(core=CORE, n_cores=2, n_inputs=16, route_entries=64, max_host_events=32,
                   host_buffer=32, plastic=(1,))


def client_for(cfg):
    return ChipClient(ModelTransport(ChipModel(cfg)))


def test_chip_config_plastic_forms():
    assert ChipConfig(n_cores=3, plastic=True).plastic == (0, 1, 2)
    assert ChipConfig(n_cores=3, plastic=[2, 0]).plastic == (0, 2)
    assert ChipConfig(n_cores=3).plastic == () == ChipConfig(n_cores=3, plastic=False).plastic
    with pytest.raises(ValueError, match="0..2"):
        ChipConfig(n_cores=3, plastic=(3,))
    with pytest.raises(ValueError, match="2..20"):
        ChipConfig(core=CoreConfig(n_neurons=4096, n_axons=4096, weights_per_word=1),
                   plastic=True)


def test_rule_registers_encode_presets_and_refuse_bad_values():
    words = rule_registers(CORE, "stdp", m_unit=-3, shift=4, w_min=-20, w_max=30, period=2,
                           seed=0x12345678)
    assert words[Reg.ENABLE] == 1 and words[Reg.M_UNIT] == 0xFD and words[Reg.SHIFT] == 4
    assert words[Reg.BOUNDS] == bounds_word(CORE, -20, 30)
    assert words[Reg.PERIOD] == 2 and words[Reg.SEED_LO:] == [0x5678, 0x1234]
    for name, modes in RULES.items():
        words = rule_registers(CORE, name)
        assert len(words) == Reg.PERIOD + 1
        assert all(words[Reg[k.upper()]] == int(v) for k, v in modes.items()), name
    defaults = LearnRegisters()
    assert rule_registers(CORE, enable=0)[Reg.X_DECAY] == defaults.x_decay
    for bad in [dict(shift=25), dict(m_unit=-128), dict(w_min=5, w_max=4), dict(period=0),
                dict(x_decay=257), dict(w_max=128), dict(window=1 << 15), dict(seed=0),
                dict(nonsense=1)]:
        with pytest.raises(ValueError):
            rule_registers(CORE, "stdp", **bad)
    with pytest.raises(ValueError, match="unknown rule"):
        rule_registers(CORE, "hebb")


def test_learn_regions_round_trip_through_the_protocol():
    seed = 11
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    client = client_for(MIXED)
    mask = rng.random((16, 8)) < 0.5
    L.write_mask(client, 1, mask)
    assert (L.read_mask(client, 1) == mask).all()
    factors = rng.integers(-128, 128, 8)
    L.send_factors(client, 1, factors)
    got = np.array(client.read_learn(1, Region.FACTOR, 0, 8))
    assert (np.where(got > 127, got - 256, got) == factors).all()
    L.send_targets(client, 1, [6, 2, 2])
    assert client.read_learn(1, Region.TARGET, 0, 8) == [0, 0, 1, 0, 0, 0, 1, 0]
    client.write_learn(1, Region.PRE_TRACE, 3, [0x1FF, 0x012])
    client.write_learn(1, Region.ERROR_ACC, 0, [0xFFFF, 0x8000, 0x7FFF])
    client.write_learn(1, Region.POST_TRACE, 7, [200])
    traces = L.read_traces(client, 1)
    assert traces["x"][3:5].tolist() == [255, 0x12] and traces["s_pre"][3:5].tolist() == [1, 0]
    assert traces["u"][:3].tolist() == [-1, -32768, 32767] and traces["y"][7] == 200
    L.configure_rule(client, 1, "decolle", m_unit=-7, w_min=-9, w_max=9, seed=0xABCDEF01)
    rule = L.read_rule(client, 1)
    assert rule["factor_mode"] == 2 and rule["m_unit"] == 0xF9
    assert rule["bounds"] == bounds_word(CORE, -9, 9)
    assert (rule["lfsr_hi"] << 16 | rule["lfsr_lo"]) == 0xABCDEF01
    # RESET clears the learning state, keeps registers, mask and LFSR (docs/plasticity.md)
    client.reset()
    traces = L.read_traces(client, 1)
    assert not any(traces[k].any() for k in traces)
    assert L.read_rule(client, 1) == rule and (L.read_mask(client, 1) == mask).all()
    assert L.plastic_cores(client) == (1,)
    assert L.plastic_cores(client_for(ChipConfig(core=CORE, n_cores=2, n_inputs=16,
                                                 route_entries=64, max_host_events=32,
                                                 host_buffer=32))) == ()


def learn(core, region, first, payload: bytes):
    return P.Op.WRITE_LEARN, bytes([core, region]) + struct.pack("<I", first) + payload


def regs_payload(*words):
    return b"".join(struct.pack("<I", w) for w in words)


#: (request, status); on MIXED: core 1 plastic (8 neurons, 16 axons, K = 2, 8-bit weights).
BAD_LEARNING_REQUESTS = [
    ((P.Op.WRITE_LEARN, bytes([1, 0, 0, 0, 0])), P.Status.BAD_LENGTH),        # short head
    (learn(1, Region.REGISTERS, 0, b""), P.Status.BAD_LENGTH),                # no items
    (learn(1, Region.REGISTERS, 0, b"\x01\x00\x00"), P.Status.BAD_LENGTH),    # 3 of 4 bytes
    (learn(2, Region.REGISTERS, 0, regs_payload(1)), P.Status.BAD_ADDRESS),   # no core 2
    (learn(1, 7, 0, b"\x01"), P.Status.BAD_ADDRESS),                          # no region 7
    (learn(0, Region.REGISTERS, 0, regs_payload(1)), P.Status.NOT_PLASTIC),
    (learn(0, Region.FACTOR, 0, b"\x05"), P.Status.NOT_PLASTIC),
    (learn(1, Region.REGISTERS, 19, regs_payload(0, 0)), P.Status.BAD_ADDRESS),  # past 20
    (learn(1, Region.REGISTERS, Reg.LFSR_LO, regs_payload(5)), P.Status.BAD_ADDRESS),
    (learn(1, Region.REGISTERS, Reg.EPOCH, regs_payload(0)), P.Status.BAD_ADDRESS),
    (learn(1, Region.REGISTERS, Reg.SHIFT, regs_payload(25)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.M_UNIT, regs_payload(0x80)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.M_UNIT, regs_payload(0x1FF)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.POST_MODE, regs_payload(3)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.FACTOR_MODE, regs_payload(3)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.BOUNDS, regs_payload(bounds_word(CORE, 3, 2))),
     P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.X_DECAY, regs_payload(257)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.PERIOD, regs_payload(0)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.SEED_LO, regs_payload(0, 0)), P.Status.BAD_VALUE),
    (learn(1, Region.REGISTERS, Reg.SEED_HI, regs_payload(7)), P.Status.BAD_VALUE),  # alone
    (learn(1, Region.REGISTERS, Reg.WINDOW, regs_payload(1 << 15)), P.Status.BAD_VALUE),
    # a good first half does not get applied when a later item is bad
    (learn(1, Region.REGISTERS, 0, regs_payload(1, 1, 2, 2, 1, 5, 3, 0xFF00, 9, 9, 9, 9, 9,
                                                9, 0)), P.Status.BAD_VALUE),
    (learn(1, Region.MASK, 0, b"\x03\x04"), P.Status.BAD_VALUE),              # K = 2 bits
    (learn(1, Region.MASK, 1 << 20, b"\x01"), P.Status.BAD_ADDRESS),          # into region 2
    (learn(1, Region.MASK, 15 << 2 | 3, b"\x01\x01"), P.Status.BAD_ADDRESS),  # past axon 15
    (learn(1, Region.TARGET, 0, b"\x01\x02"), P.Status.BAD_VALUE),
    (learn(1, Region.TARGET, 7, b"\x01\x01"), P.Status.BAD_ADDRESS),
    (learn(1, Region.FACTOR, 8, b"\x01"), P.Status.BAD_ADDRESS),
    (learn(1, Region.PRE_TRACE, 0, b"\x00\x02"), P.Status.BAD_VALUE),         # 10 bits
    (learn(1, Region.PRE_TRACE, 15, b"\x00\x00\x00\x00"), P.Status.BAD_ADDRESS),
    (learn(1, Region.POST_TRACE, 0xFFFFFFFF, b"\x00"), P.Status.BAD_ADDRESS),
    (learn(1, Region.ERROR_ACC, 6, b"\x00\x00" * 3), P.Status.BAD_ADDRESS),
    ((P.Op.READ_LEARN, bytes([1, 0]) + struct.pack("<I", 0)), P.Status.BAD_LENGTH),
    ((P.Op.READ_LEARN, bytes([1, 0]) + struct.pack("<IH", 0, 0)), P.Status.BAD_LENGTH),
    ((P.Op.READ_LEARN, bytes([1, 0]) + struct.pack("<IH", 0, 21)), P.Status.BAD_ADDRESS),
    ((P.Op.READ_LEARN, bytes([1, 1]) + struct.pack("<IH", 0, 1022)), P.Status.BAD_LENGTH),
    ((P.Op.READ_LEARN, bytes([1, 1]) + struct.pack("<IH", 62, 3)), P.Status.BAD_ADDRESS),
    ((P.Op.READ_LEARN, bytes([0, 5]) + struct.pack("<IH", 0, 1)), P.Status.NOT_PLASTIC),
    ((P.Op.READ_LEARN, bytes([9, 5]) + struct.pack("<IH", 0, 1)), P.Status.BAD_ADDRESS),
]


def snapshot(client):
    return (read_learning_state(client, 1), L.read_mask(client, 1),
            client.read_learn(1, Region.FACTOR, 0, 8), client.read_learn(1, Region.TARGET, 0, 8),
            L.read_weight_matrix(client, 0).tolist(), L.read_weight_matrix(client, 1).tolist())


def exercise_bad_learning_requests(client):
    """Every bad request gets its status and changes nothing (`snapshot` before == after)."""
    before = snapshot(client)
    for (op, args), status in BAD_LEARNING_REQUESTS:
        with pytest.raises(ChipError) as err:
            client.call(op, args)
        assert err.value.status == status, (op.name, args.hex(), err.value.status.name)
    after = snapshot(client)
    assert repr(before) == repr(after)


def test_bad_learning_requests_get_their_status_and_change_nothing():
    seed = 12
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    client = client_for(MIXED)
    setup_chip(client, rng, 1, [(i, i) for i in range(16)])
    L.configure_rule(client, 1, "stdp", m_unit=2, x_inc=40, seed=99)
    L.send_factors(client, 1, rng.integers(-5, 5, 8))
    exercise_bad_learning_requests(client)


def test_chip_without_plastic_cores_does_not_know_learning_opcodes():
    client = client_for(ChipConfig(core=CORE, n_cores=1, n_inputs=16, route_entries=64,
                                   max_host_events=32, host_buffer=32))
    for op, args in (learn(0, 0, 0, regs_payload(1)),
                     (P.Op.READ_LEARN, bytes([0, 0]) + struct.pack("<IH", 0, 1))):
        with pytest.raises(ChipError, match="UNKNOWN_OP"):
            client.call(op, args)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_protocol_learning_run_equals_plasticity_model(seed):
    """300 steps, a new random rule every 60: the chip model driven over the protocol (routes,
    INPUT, WRITE_LEARN factors/targets, TICK) ends with exactly the weights, traces and LFSR of
    `PlasticCoreModel` driven directly with the same events, factors and targets."""
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    client = client_for(ONE)
    params, weights, mask = setup_chip(client, rng, 0, [(i, i) for i in range(16)])
    direct = PlasticCoreModel(CORE, params, weights)
    direct.set_mask(mask)
    updates = 0
    for step in range(300):
        if step % 60 == 0:
            rule, values = random_rule(rng, CORE)
            lfsr_seed = int(rng.integers(1, 1 << 32))
            L.configure_rule(client, 0, rule, seed=lfsr_seed, **values)
            direct.configure(enable=1, **{k: int(v) for k, v in RULES[rule].items()}, **values)
            direct.seed(lfsr_seed)
        ids = step_inputs(rng, 16)
        factors, targets = step_teaching(rng, 8)
        client.input(ids)
        send_teaching(client, 0, factors, targets)
        client.tick()
        direct.events(ids)
        direct.set_factors(factors)
        direct.set_targets(targets)
        before = direct.updates
        direct.tick()
        updates += direct.updates - before
        if step % 50 == 49:
            got_weights, traces, regs = read_learning_state(client, 0)
            assert (got_weights == direct.weights).all(), f"weights differ after step {step}"
    got_weights, traces, regs = read_learning_state(client, 0)
    assert (got_weights == direct.weights).all()
    assert (traces["x"] == direct.x).all() and (traces["y"] == direct.y).all()
    assert (traces["u"] == direct.u).all()
    assert (regs[Reg.LFSR_HI] << 16 | regs[Reg.LFSR_LO]) == direct.lfsr.state
    assert updates > 200, f"only {updates} synapse updates: the run does not exercise learning"
    assert (got_weights != weights).sum() > 10


def test_device_learning_methods_and_plastic_config_string():
    from spikefab.host.device import _config_arg, open_device, parse_config
    assert parse_config(_config_arg(MIXED)).plastic == (1,)
    assert "plastic" not in _config_arg(ChipConfig())
    seed = 24
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    with open_device("model", config=MIXED) as dev:
        assert dev.plastic_cores() == (1,) and dev.info()["plastic_cores"] == [1]
        _, weights, _ = setup_chip(dev.client, rng, 1, [(i, i) for i in range(16)])
        dev.set_plastic_mask(1, np.ones((16, 8), dtype=bool))
        dev.configure_learning(1, "delta", m_unit=5, shift=0, seed=3)
        assert dev.learning_rule(1)["factor_mode"] == 2
        for _ in range(20):
            dev.client.input(step_inputs(rng, 16, 0.5))
            dev.send_targets(1, [0, 3, 5])
            dev.client.tick()
        learned = dev.read_weights(1)
        assert (learned != weights).sum() > 10 and dev.read_traces(1)["x"].shape == (16,)
        with pytest.raises(ChipError, match="NOT_PLASTIC"):
            dev.send_factors(0, [1] * 8)
        assert (dev.read_weights(1) == learned).all()


def test_network_with_a_plastic_readout_learns_through_run():
    """Network level: a plastic connection (from zero weights) into a population on the plastic
    core learns from per-step targets sent by `run`; a fixed connection into the same neurons
    keeps its weights (the mask); the learned weights read back equal the chip model's."""
    from spikefab.host.network import (
        Network,
        NetworkDoesNotFit,
        configure_learning,
        load,
        read_connection,
        run,
    )
    seed = 25
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    net = Network()
    inp = net.add_input("in", 8)
    relay = net.add_population("relay", 8, threshold=20)           # core 0 (not plastic)
    out = net.add_population("out", 4, threshold=150, beta=3500, record=True)   # core 1
    net.connect(inp, relay, (rng.random((8, 8)) < 0.3) * 60)
    fixed = rng.integers(-20, 20, (8, 4)) * (rng.random((8, 4)) < 0.5)
    net.connect(inp, out, fixed)
    net.connect(relay, out, np.zeros((8, 4), dtype=int), plastic=True)
    image = net.compile(MIXED)
    model = ChipModel(MIXED)
    client = ChipClient(ModelTransport(model))
    load(client, image)
    configure_learning(client, image, "out", "decolle", m_unit=6, shift=4, x_decay=200,
                       x_inc=100, window=5000, w_min=-60, w_max=60, seed=5)
    steps = 120
    raster = (rng.random((steps, 8)) < 0.3).astype(int)
    targets = np.zeros((steps, 4), dtype=bool)
    targets[::3, 1] = targets[1::3, 2] = True
    run(client, image, {"in": raster}, targets={"out": targets})
    learned = read_connection(client, image, "relay", "out")
    assert (learned != 0).sum() > 8 and learned.min() >= -60 and learned.max() <= 60
    assert (read_connection(client, image, "in", "out") == fixed).all()
    core = model.cores[1]
    for j, (c, n) in enumerate(image.placement["out"]):
        for i, source in enumerate(image.sources["relay"]):
            assert learned[i, j] == core.weights[image.axons[c][source], n]
    bad = Network()
    a, b = bad.add_input("a", 2), bad.add_population("b", 2)
    bad.connect(a, b, np.zeros((2, 2), dtype=int), plastic=True)
    with pytest.raises(NetworkDoesNotFit, match="not plastic"):
        bad.compile(MIXED)
