# amaranth: UnusedElaboratable=no
"""The iCE40 synapse memory (SB_SPRAM256KA primitives, simulated with Yosys's own model) behind
the core, checked cycle by cycle against the golden model like the behavioural memory."""

import numpy as np
import pytest
from amaranth.back import rtlil

from spikefab.host.networks import poisson_events, random_params, random_weights
from spikefab.hw.core import LIFCore
from spikefab.hw.synapse import SynapseMemory, spram_count
from spikefab.sim import CoreModel
from spikefab.spec import CoreConfig
from spikefab.verify.rtlsim import make_scenario, run_scenario

SPRAM_CASES = {
    # name: (config, seed); (banks in depth, SPRAMs in width) in the comment
    "256x256_K2_two_banks": (CoreConfig(), 31),                                  # (2, 1)
    "256x256_K4_two_wide": (CoreConfig(weights_per_word=4), 32),                 # (1, 2)
    "24x5_K3_odd_width": (CoreConfig(n_neurons=24, n_axons=5, weights_per_word=3,
                                     weight_width=7), 33),                      # (1, 2)
}


@pytest.mark.parametrize("name", SPRAM_CASES)
def test_spram_core_matches_the_model(name):
    cfg, seed = SPRAM_CASES[name]
    print(f"seed {seed}, SPRAM tiling {spram_count(cfg)}")
    rng = np.random.default_rng(seed)
    params, weights = random_params(cfg, rng), random_weights(cfg, rng)
    steps = poisson_events(rng, 60, cfg.n_axons, 0.1)
    result = run_scenario(cfg, make_scenario(params, weights, steps, seed=seed, gap_prob=0.2,
                                             stall_prob=0.3, verify_config=True),
                          synapse_memory="spram")
    model = CoreModel(cfg, params, weights)
    expected = []
    for axons in steps:
        model.events(axons)
        expected.extend(int(x) for x in model.tick())
    assert list(result["spike_neurons"]) == expected
    assert len(expected) > 0


def test_spram_tiling():
    assert spram_count(CoreConfig()) == (2, 1)
    assert spram_count(CoreConfig(weights_per_word=4)) == (1, 2)
    assert spram_count(CoreConfig(n_neurons=16, n_axons=4)) == (1, 1)


def test_spram_instances_in_the_netlist():
    """The SPRAM kind instantiates exactly the primitives its tiling needs, and nothing maps
    the behavioural memory; a memory larger than the UP5K's four SPRAMs is refused."""
    text = rtlil.convert(LIFCore(CoreConfig(), synapse_memory="spram"))
    assert text.count("cell \\SB_SPRAM256KA") == 2
    assert "SB_SPRAM256KA" not in rtlil.convert(LIFCore(CoreConfig(), synapse_memory="memory"))
    with pytest.raises(ValueError, match="needs 8 SPRAMs"):
        rtlil.convert(SynapseMemory(CoreConfig(n_axons=1024), kind="spram"))
    with pytest.raises(ValueError, match="synapse memory kind"):
        SynapseMemory(CoreConfig(), kind="bram")


def test_chip_with_every_single_port_memory_in_spram_matches_the_model():
    """The iCEBreaker's memory map (synapses in two SPRAMs, both frame buffers in one each),
    started with random SPRAM contents: power-up weights must still read 0, and a network run,
    read-back and status must equal the model byte for byte."""
    from test_chip_rtl import random_network

    from spikefab.host.link import ChipClient, RecordingTransport
    from spikefab.host.network import load, run
    from spikefab.sim import ChipModel
    from spikefab.spec import ChipConfig
    from spikefab.verify.rtlsim import run_chip_exchange

    seed = 34
    print(f"seed {seed}")
    cfg = ChipConfig(core=CoreConfig(), n_cores=1, n_inputs=12, route_entries=256,
                     max_host_events=128, host_buffer=64)
    rng = np.random.default_rng(seed)
    transport = RecordingTransport(ChipModel(cfg))
    client = ChipClient(transport)
    for axon in (0, 127, 128, 255):        # both banks, before anything was written
        assert client.read_weights(0, axon << 7, 128) == [0] * 128
    net = random_network(rng, recurrent=True)
    image = net.compile(cfg)
    load(client, image)
    spikes = run(client, image, {"in": (rng.random((40, 12)) < 0.25).astype(int)})
    assert sum(s.sum() for s in spikes.values()) > 10
    for axon in (0, 5, 200, 255):
        client.read_weights(0, axon << 7, 128)
    client.read_state(0, 0, 256)
    client.status()
    run_chip_exchange(cfg, transport.requests, transport.replies, seed=seed, gap_prob=0.1,
                      stall_prob=0.2, memory_kind="spram",
                      plusargs=("+verilator+rand+reset+2", "+verilator+seed+34"))
