# amaranth: UnusedElaboratable=no
"""INPUT8, the one-byte-per-id input request: the same semantics as INPUT in the golden model,
and the gateware's replies equal the model's byte for byte."""

import random

import numpy as np
import pytest
from test_chip_rtl import random_network

from spikefab import protocol as P
from spikefab.host.link import ChipClient, ChipError, ModelTransport, RecordingTransport
from spikefab.host.network import load
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig
from spikefab.verify.rtlsim import run_chip_exchange

CFG = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=64, weights_per_word=4), n_cores=3,
                 n_inputs=16, route_entries=256, max_host_events=128, host_buffer=64)


def session(transport, rng, use_input8):
    """Load a network, then 40 steps of random inputs, each sent as INPUT or INPUT8."""
    client = ChipClient(transport)
    image = random_network(np.random.default_rng(4), recurrent=True).compile(CFG)
    load(client, image)
    out = []
    for _ in range(40):
        ids = [rng.randrange(12) for _ in range(rng.randrange(0, 20))]
        if use_input8:
            client.call(P.Op.INPUT8, bytes(ids))
        else:
            client.call(P.Op.INPUT, b"".join(i.to_bytes(2, "little") for i in ids))
        client.tick()
        out.append(client.fetch())
    return client, out


def test_input8_acts_like_input_in_the_model():
    seed = 21
    print(f"seed {seed}")
    _, with_input = session(ModelTransport(ChipModel(CFG)), random.Random(seed), False)
    client, with_input8 = session(ModelTransport(ChipModel(CFG)), random.Random(seed), True)
    assert with_input8 == with_input and sum(map(len, with_input)) > 20
    with pytest.raises(ChipError, match="INPUT8 rejected by the chip: BAD_ADDRESS"):
        client.call(P.Op.INPUT8, bytes([3, 16]))        # id 16 >= n_inputs
    with pytest.raises(ChipError, match="LIMIT"):
        client.call(P.Op.INPUT8, bytes([0] * 200))
    assert client.status()["host_events"] == 0          # refused frames changed nothing
    client.call(P.Op.INPUT8)                            # no ids: accepted, does nothing


def test_input8_gateware_matches_model_byte_for_byte():
    seed = 22
    print(f"seed {seed}")
    transport = RecordingTransport(ChipModel(CFG))
    client, _ = session(transport, random.Random(seed), True)
    for ids in ([3, 16], [0] * 200, [], [255], list(range(12)) * 5):
        try:
            client.call(P.Op.INPUT8, bytes(ids))
        except ChipError:
            pass
    client.status()
    run_chip_exchange(CFG, transport.requests, transport.replies, seed=seed, gap_prob=0.1,
                      stall_prob=0.2)
