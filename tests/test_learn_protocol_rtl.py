# amaranth: UnusedElaboratable=no
"""Learning over the host protocol: the chip's gateware against the chip model, byte for byte.

One small chip (core 1 plastic, core 0 not; core 0's spikes feed core 1): a seeded learning
session recorded on the model (random rules rewritten at run time, third factors and targets
every step, weight/mask/trace read-back) and every rejected learning request, replayed into the
Verilator-simulated gateware, which must answer every byte the same.
"""

import numpy as np
from learnrun import (
    random_rule,
    read_learning_state,
    send_teaching,
    setup_chip,
    step_inputs,
    step_teaching,
)
from test_learn_protocol import BAD_LEARNING_REQUESTS, CORE, exercise_bad_learning_requests

from spikefab.host import learning as L
from spikefab.host.link import ChipClient, RecordingTransport
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig
from spikefab.verify.rtlsim import run_chip_exchange

CFG = ChipConfig(core=CORE, n_cores=2, n_inputs=16, route_entries=64, max_host_events=32,
                 host_buffer=32, plastic=(1,))


def test_learning_session_and_refusals_match_model_byte_for_byte():
    seed = 31
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    transport = RecordingTransport(ChipModel(CFG))
    client = ChipClient(transport)
    # inputs 0..7 -> core 1 axons 0..7 (plastic), inputs 8..15 -> core 0 axons 0..7;
    # core 0's neurons -> core 1 axons 8..15 (spikes of step t arrive in step t + 1)
    setup_chip(client, rng, 1, [(i, i) for i in range(8)])
    index = client.read_route_index(0, CFG.n_sources)
    dests = client.read_route_dest(0, 8)
    for n in range(8):
        index[n] = (len(dests), 1)
        dests.append((1, 8 + n))
    for i in range(8, 16):
        index[CFG.input_source(i)] = (len(dests), 1)
        dests.append((0, i - 8))
    client.write_route_index(0, index)
    client.write_route_dest(0, dests)
    client.write_params(0, 0, [1 << 26] * 8)      # threshold 1: core 0 relays its inputs
    client.write_weights(0, 0, [0x7F7F] * 32)
    for step in range(300):
        if step % 50 == 0:
            rule, values = random_rule(rng, CORE)
            L.configure_rule(client, 1, rule, seed=int(rng.integers(1, 1 << 32)), **values)
        if step == 150:
            L.write_mask(client, 1, rng.random((16, 8)) < 0.7)
        if step == 220:             # clears traces, u, factors, targets, epoch; keeps the rest
            client.reset()
        client.input(step_inputs(rng, 16))
        send_teaching(client, 1, *step_teaching(rng, 8))
        client.tick()
        if step % 30 == 29:
            read_learning_state(client, 1)
            L.read_mask(client, 1)
    final = read_learning_state(client, 1)
    model_core = transport.model.cores[1]
    updates = model_core.updates
    assert updates > 300, f"only {updates} synapse updates"
    assert (final[0] == model_core.weights).all()
    exercise_bad_learning_requests(client)
    client.status()
    print(f"{len(transport.requests)} requests, {updates} synapse updates")
    result = run_chip_exchange(CFG, transport.requests, transport.replies, seed=seed,
                               gap_prob=0.1, stall_prob=0.2)
    cycles = np.asarray(result["request_cycles"])
    print(f"gateware cycles per request: median {np.median(cycles):.0f}, max {cycles.max()}")
    assert len(BAD_LEARNING_REQUESTS) > 30
