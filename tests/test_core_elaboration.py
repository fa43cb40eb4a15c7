# amaranth: UnusedElaboratable=no
"""The core's ports and parameter checks, without simulation."""

import pytest
from amaranth.back import rtlil

from spikefab.hw import LIFCore
from spikefab.hw.layouts import command_layout, spike_layout
from spikefab.spec import CoreConfig


def test_ports_are_streams_with_documented_payloads():
    core = LIFCore(CoreConfig(n_neurons=16, n_axons=8, weights_per_word=4))
    members = dict(core.signature.members)
    assert set(members) == {"i_cmd", "o_spike", "i_cfg", "o_cfg", "o_status"}
    assert core.i_cmd.payload.shape() == command_layout(core.cfg)
    assert core.o_spike.payload.shape() == spike_layout(core.cfg)
    assert len(core.o_spike.payload.neuron) == 4


@pytest.mark.parametrize("cfg", [
    CoreConfig(n_neurons=1, n_axons=1, weights_per_word=1),
    CoreConfig(n_neurons=3, n_axons=5, weights_per_word=3),
    CoreConfig(n_neurons=1024, n_axons=64, weights_per_word=8),
])
def test_elaborates_for_small_odd_and_large_sizes(cfg):
    assert "module" in rtlil.convert(LIFCore(cfg))


def test_bad_fifo_depth_is_rejected():
    with pytest.raises(ValueError, match="spike_fifo_depth must be an integer in 2..4096"):
        LIFCore(CoreConfig(n_neurons=4, n_axons=4), spike_fifo_depth=1)
