"""NIR export: a spikefab Network -> nir.NIRGraph (and file) -> `load` gives the same Network.

The round trip must be exact: the same integer parameters and weights, hence the same golden-model
spikes. What NIR cannot express is refused with one line naming the population.
"""

import nir
import numpy as np
import pytest

from spikefab.host.network import Network
from spikefab.nir import NIRExportError, export, load
from spikefab.spec import CoreConfig, ResetMode

DT = 1e-3


def learned_network(seed, *, recurrent=False, cuba=False):
    """Input 24 -> hidden 12 (per-neuron beta, threshold, bias) -> out 3, integer weights as
    on-chip learning leaves them (any value in the range, not hitting the maximum)."""
    rng = np.random.default_rng(seed)
    net = Network()
    x = net.add_input("x", 24)
    hidden = net.add_population(
        "hidden", 12, beta=rng.integers(2000, 4000, 12), threshold=rng.integers(50, 400, 12),
        bias=rng.integers(-5, 6, 12), alpha=rng.integers(500, 3000, 12) if cuba else 0)
    out = net.add_population("out", 3, beta=4096, threshold=300, record=True)
    net.connect(x, hidden, rng.integers(-60, 90, (24, 12)))
    net.connect(hidden, out, rng.integers(-30, 100, (12, 3)))
    if recurrent:
        net.connect(hidden, hidden, rng.integers(-20, 20, (12, 12)))
    return net


def same_network(a: Network, b: Network):
    assert list(a.inputs) == list(b.inputs)
    assert {n: g.size for n, g in a.inputs.items()} == {n: g.size for n, g in b.inputs.items()}
    assert list(a.populations) == list(b.populations)
    for name, pop in a.populations.items():
        other = b.populations[name]
        assert other.size == pop.size and other.record == pop.record
        for key, value in pop.params.items():
            want = np.broadcast_to(value, (pop.size,))
            got = np.broadcast_to(other.params[key], (pop.size,))
            assert np.array_equal(got, want), (name, key)
    pairs = {(c.pre.name, c.post.name): c.weights for c in a.connections}
    assert {(c.pre.name, c.post.name) for c in b.connections} == set(pairs)
    for c in b.connections:
        assert c.weights.dtype == np.int64
        assert np.array_equal(c.weights, pairs[(c.pre.name, c.post.name)]), (c.pre.name,
                                                                             c.post.name)


@pytest.mark.parametrize("seed,recurrent,cuba", [(1, False, False), (2, True, False),
                                                 (3, False, True)])
def test_round_trip_is_bit_exact_through_a_file(tmp_path, seed, recurrent, cuba):
    print(f"seed={seed}")
    net = learned_network(seed, recurrent=recurrent, cuba=cuba)
    path = tmp_path / "learned.nir"
    graph = export(net, DT, path=path)
    assert isinstance(graph, nir.NIRGraph) and graph.metadata["dt"] == DT
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert ("CubaLIF" if cuba else "LIF") in kinds and "IF" in kinds and "Affine" in kinds
    back = load(path)                       # dt from the file's metadata
    assert back.dt == DT and back.dt_source == "graph metadata"
    assert {r.limited_by for r in back.populations} == {"graph metadata"}
    same_network(net, back.network)
    rng = np.random.default_rng(seed + 100)
    x = (rng.random((4, 80, 24)) < 0.2).astype(np.int64)
    want = net.reference(CoreConfig(), {"x": x})
    got = back.network.reference(CoreConfig(), {"x": x})
    assert want["out"].sum() > 10 and want["hidden"].sum() > 50
    for name in want:
        assert np.array_equal(got[name], want[name]), name


def test_export_uses_r_1_and_threshold_1_in_nir_units():
    net = learned_network(4)
    graph = export(net, DT)
    hidden = graph.nodes["hidden"]
    assert np.allclose(hidden.r, 1) and hidden.v_threshold.max() == 1.0
    beta = net.populations["hidden"].params["beta"] / 4096
    assert np.allclose(1 - DT / hidden.tau, beta)
    assert ("out", "out_output") in graph.edges and "hidden_output" not in graph.nodes


@pytest.mark.parametrize("change,reason", [
    (dict(refractory=2), "refractory"),
    (dict(reset=int(ResetMode.SUBTRACT)), "subtract reset"),
    (dict(alpha=4096), "never decays"),
    (dict(beta=np.array([4096, 3000, 3000])), "mixes leaky"),
])
def test_what_nir_cannot_express_is_refused_in_one_line(change, reason):
    net = Network()
    x = net.add_input("x", 2)
    params = dict(beta=3000, threshold=10)
    params.update(change)
    pop = net.add_population("p", 3, record=True, **params)
    net.connect(x, pop, np.ones((2, 3), dtype=np.int64))
    with pytest.raises(NIRExportError, match=f"population p: .*{reason}") as info:
        export(net, DT)
    assert "\n" not in str(info.value)


def test_a_scale_from_metadata_that_does_not_fit_is_an_error(tmp_path):
    from spikefab.nir import NIRImportError
    graph = export(learned_network(5), DT)
    graph.nodes["hidden"].metadata["spikefab_scale"] = 1e6
    with pytest.raises(NIRImportError, match="node hidden: "):
        load(graph)
