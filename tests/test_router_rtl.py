# amaranth: UnusedElaboratable=no
"""Router gateware against the routing rule of the chip's golden model."""

import numpy as np
import pytest

from spikefab import protocol as P
from spikefab.hw.router import Router
from spikefab.spec import ChipConfig, CoreConfig
from spikefab.verify.rtlsim import run_cocotb

CFG = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=16), n_cores=3, n_inputs=8,
                 route_entries=64, max_host_events=64, host_buffer=16)


@pytest.mark.parametrize("seed, gap, stall", [(1, 0.0, 0.0), (2, 0.5, 0.5), (3, 0.1, 0.8)])
def test_router_multicasts_every_destination_in_order(seed, gap, stall):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, CFG.route_entries, CFG.n_sources)
    counts = np.minimum(rng.integers(0, 6, CFG.n_sources), CFG.route_entries - starts)
    counts[rng.random(CFG.n_sources) < 0.2] = 0
    dests = np.stack([rng.integers(0, CFG.n_cores, CFG.route_entries),
                      rng.integers(0, CFG.core.n_axons, CFG.route_entries)], axis=1)
    dests[rng.random(CFG.route_entries) < 0.2] = (P.HOST_CORE, 0)
    sources = rng.integers(0, CFG.n_sources + 3, 300)      # a few out-of-range ids too
    result = run_cocotb(Router(CFG), "router", "spikefab.verify.router_bench", "route_traffic",
                        {"seed": np.array(seed), "index": np.stack([starts, counts], axis=1),
                         "dests": dests, "sources": sources, "gap_prob": np.array(gap),
                         "stall_prob": np.array(stall)})
    assert int(result["events"]) > 200 and int(result["host"]) > 50
