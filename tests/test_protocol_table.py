"""The protocol table (`protocol.REQUESTS`) stays true: the golden model answers each request
only with statuses its row lists, and every listed status is reachable."""

import random
import struct

import pytest

from spikefab import protocol as P
from spikefab.host.link import ChipClient, LinkError, ModelTransport
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig

#: Core 1 plastic, core 0 not (NOT_PLASTIC); small depths so that random addresses hit both
#: sides of every bound; input 0 routed to many entries so that INPUT can reach LIMIT.
CFG = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=16, weights_per_word=2), n_cores=2,
                 n_inputs=16, route_entries=64, max_host_events=32, host_buffer=32,
                 plastic=(1,))
#: Weight words of 12 bits in 2 bytes: a weight word can have bits set above its width.
ODD = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=16, weights_per_word=2, weight_width=6),
                 n_cores=2, n_inputs=16, route_entries=64, max_host_events=32, host_buffer=32)


def random_field(rng, field) -> int:
    """Mostly small values (near the chip's bounds), sometimes any value of the field."""
    if field.name == "steps":
        return rng.randrange(3)     # TICK: long runs of steps only slow the fuzz down
    draw = rng.random()
    if draw < 0.2:
        return rng.randrange(1 << field.width)
    return rng.randrange(0, 3 if draw < 0.6 else 12)


def random_request(rng, request: P.Request, cfg: ChipConfig) -> bytes:
    """Arguments of `request`: a random head and items, sometimes cut or padded."""
    head = request.pack_head(**{f.name: random_field(rng, f) for f in request.head})
    items = b""
    if request.access is P.Access.WRITE:
        region = P.unpack_struct(request.head, head).get("region", 0)
        try:
            nbytes = request.item_bytes(cfg, region)
        except ValueError:          # no such region: any item size
            nbytes = rng.randrange(1, 5)
        for _ in range(rng.choice([0, 1, 1, 2, 3, 40])):
            if rng.random() < 0.5:
                items += bytes(nbytes)
            else:
                items += bytes(rng.randrange(256) for _ in range(nbytes))
    args = head + items
    cut = rng.random()
    if cut < 0.1 and args:
        args = args[:rng.randrange(len(args))]
    elif cut < 0.15:
        args += bytes([rng.randrange(256)])
    return args


def fuzz(cfg: ChipConfig, seed: int, trials: int, seen: dict):
    """Random requests to the model of `cfg`; record each request's statuses in `seen`."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    model = ChipModel(cfg)
    client = ChipClient(ModelTransport(model))
    requests = [r for r in P.REQUESTS.values() if cfg.plastic or not r.plastic]
    for trial in range(trials):
        if trial % 500 == 0:        # keep input 0 heavily routed, whatever the fuzz wrote
            client.write_route_dest(0, [(0, 1)] * 16)
            client.write_route_index(cfg.input_source(0), [(0, 16)])
        request = rng.choice(requests)
        args = random_request(rng, request, cfg)
        reply = model.execute(bytes([request.op, trial & 0xFF]) + args)
        status = P.Status(reply[2])             # the model asserts it is listed, too
        assert status in request.statuses, (seed, trial, request.name, args.hex(), status.name)
        seen[request.op].add(status)


def test_fuzzed_requests_get_only_listed_statuses_and_reach_every_one():
    seen = {op: set() for op in P.Op}
    fuzz(CFG, 20261204, 4000, seen)
    fuzz(ODD, 20261205, 2000, seen)
    # Every chip register is writable in full today, so WRITE_REGS cannot answer BAD_VALUE yet;
    # the status is the protocol's (and the gateware's check) for the first register that is not.
    assert all(mask == 0xFFFF_FFFF for mask in P.REG_MASKS.values())
    seen[P.Op.WRITE_REGS].add(P.Status.BAD_VALUE)
    for op, request in P.REQUESTS.items():
        never = sorted(s.name for s in request.statuses - seen[op])
        assert not never, f"{op.name}: listed but never answered {never}"


def test_plastic_requests_are_unknown_to_a_chip_without_plastic_cores():
    model = ChipModel(ChipConfig(core=CFG.core, n_cores=2, n_inputs=16, route_entries=64,
                                 max_host_events=32, host_buffer=32))
    for op in P.LEARN_OPS:
        assert model.execute(bytes([op, 1]))[2] == P.Status.UNKNOWN_OP


def test_table_is_consistent():
    for request in P.REQUESTS.values():
        assert all(f.width in (8, 16, 32) and not f.signed for f in request.head), request.name
        if request.access is P.Access.READ and request.op != P.Op.FETCH:
            assert request.head[-1].name == "count", request.name
        if request.access is P.Access.CONTROL:
            assert request.item is None, request.name
        else:
            assert request.item in P.ITEMS, request.name
    assert P.FETCH_MAX == (P.MAX_PAYLOAD - 3 - 2) // 6
    assert struct.calcsize(P.IDENTIFY_FORMAT) == 27


@pytest.mark.parametrize("data", [b"\x01", b"\x01\x00", b"\x00\x00\x01", b"\x02\x00" + bytes(7)])
def test_client_refuses_a_fetch_reply_that_does_not_hold_its_entries(data):
    with pytest.raises(LinkError, match="FETCH reply"):
        ChipClient.decode_fetch(data)


def test_client_round_trips_every_memory_through_the_table():
    client = ChipClient(ModelTransport(ChipModel(CFG)))
    client.write_route_index(3, [(1, 2), (60, 4)])
    assert client.read_route_index(3, 2) == [(1, 2), (60, 4)]
    client.write_route_dest(5, [(P.HOST_CORE, 0), (1, 15)])
    assert client.read_route_dest(5, 2) == [(P.HOST_CORE, 0), (1, 15)]
    client.write_regs(0, [0xDEADBEEF])
    assert client.read_regs(0, 1) == [0xDEADBEEF]
    client.write_weights(1, 2, [0x1234, 0xFF01])
    assert client.read_weights(1, 2, 2) == [0x1234, 0xFF01]
    with pytest.raises(ValueError, match="count"):
        client.write_route_index(0, [(0, 1 << 16)])      # does not fit its u16 field
