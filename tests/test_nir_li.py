"""LI readouts: a population that never fires (threshold Vmax) whose membrane reaches the host.

The golden model gives the membrane after every step (`Network.reference(membranes=...)`); a chip
gives the same values read back with READ_STATE before every TICK (`run(membranes=...)`), checked
here on the chip model and, byte for byte, on the gateware.
"""

import nir
import numpy as np
import pytest

from spikefab.host.link import ChipClient, ModelTransport
from spikefab.host.network import load as load_chip
from spikefab.host.network import run, run_on_rtl
from spikefab.nir import NIRImportError, export, load
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig

DT = 1e-3
SMALL = ChipConfig(core=CoreConfig(n_neurons=10, n_axons=48, weights_per_word=1), n_cores=4,
                   n_inputs=12, route_entries=256, max_host_events=64, host_buffer=32)


def li_graph(w1, w2, *, tau=0.02, tau_out=0.01):
    """Input -> Linear -> LIF -> Linear -> LI -> Output."""
    n_in, n_hid, n_out = w1.shape[1], w1.shape[0], w2.shape[0]
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Linear(weight=w1),
             "lif": nir.LIF(tau=np.full(n_hid, tau), r=np.full(n_hid, tau / DT),
                            v_leak=np.zeros(n_hid), v_threshold=np.ones(n_hid),
                            v_reset=np.zeros(n_hid)),
             "fc2": nir.Linear(weight=w2),
             "readout": nir.LI(tau=np.full(n_out, tau_out), r=np.full(n_out, tau_out / DT),
                               v_leak=np.zeros(n_out)),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "readout"),
             ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def graph_and_input(seed, n_in=12, n_hid=8, n_out=2, steps=60):
    rng = np.random.default_rng(seed)
    print(f"seed={seed}")
    w1 = rng.integers(-20, 128, (n_hid, n_in)) / 127 * 0.6
    w2 = rng.integers(-60, 128, (n_out, n_hid)) / 127 * 0.5
    x = (rng.random((steps, n_in)) < 0.3).astype(np.int64)
    return li_graph(w1, w2), x


def float_li(hidden, weights, beta):
    """The LI readout in float64 (u' = beta u + W s) driven by T x n_hid hidden spikes."""
    u, out = np.zeros(weights.shape[1]), []
    for fired in hidden:
        u = beta * u + fired @ weights
        out.append(u.copy())
    return np.array(out)


def test_li_imports_as_a_population_that_never_fires_and_its_value_is_the_membrane():
    graph, x = graph_and_input(1)
    imported = load(graph, dt=DT)
    assert imported.readouts == ["readout"]
    pop = imported.network.populations["readout"]
    assert not pop.record and pop.params["threshold"][0] == CoreConfig().voltage_range[1]
    got = imported.network.reference(CoreConfig(), {"input": x}, membranes=["readout"])
    assert not got["readout"].any()
    values = imported.readout(got)["readout"]
    assert got["lif"].sum() > 20
    # The value is V / scale: the float recurrence with the quantised beta and weights, less
    # the toward-zero rounding of the decay (< 1 unit a step, so < 1 / (1 - beta) units in
    # all); the hidden spikes reach the readout one step later on the chip (one hop).
    report = next(r for r in imported.populations if r.name == "readout")
    beta = pop.params["beta"][0] / 4096
    weights = imported.network.connections[1].weights / report.scale
    want = float_li(got["lif"], weights, beta)
    assert np.abs(want).max() > 0.5
    assert np.abs(weights - graph.nodes["fc2"].weight.T).max() <= 0.5 / report.scale + 1e-12
    bound = 1 / (1 - beta) / report.scale
    error = np.abs(values[1:] - want[:-1]).max()
    print(f"largest error {error:.4f}, bound {bound:.4f}, largest value {np.abs(want).max()}")
    assert error < bound


def test_li_membranes_read_back_from_the_chip_model_and_the_gateware_equal_the_reference():
    graph, x = graph_and_input(2)
    imported = load(graph, dt=DT)
    net = imported.network
    image = net.compile(SMALL)
    want = net.reference(SMALL.core, {"input": x}, membranes=["readout", "lif"])
    client = ChipClient(ModelTransport(ChipModel(SMALL)))
    load_chip(client, image)
    got = run(client, image, {"input": x}, membranes=["readout", "lif"])
    assert np.array_equal(got["readout.v"], want["readout.v"])
    assert np.array_equal(got["lif.v"], want["lif.v"])
    assert np.abs(want["readout.v"]).max() > 100
    rtl = run_on_rtl(image, {"input": x[:30]}, membranes=["readout"])
    assert np.array_equal(rtl["readout.v"], want["readout.v"][:30])


def test_li_export_round_trip_and_the_errors():
    graph, x = graph_and_input(3)
    imported = load(graph, dt=DT)
    back = load(export(imported.network, DT))
    assert back.readouts == ["readout"]
    a = imported.network.reference(CoreConfig(), {"input": x}, membranes=["readout"])
    b = back.network.reference(CoreConfig(), {"input": x}, membranes=["readout"])
    assert np.array_equal(a["readout.v"], b["readout.v"])
    graph.nodes["fc3"] = nir.Linear(weight=np.ones((2, 2)))
    graph.nodes["lif2"] = graph.nodes["lif"].__class__(
        tau=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
        v_reset=np.zeros(2))
    graph.edges += [("readout", "fc3"), ("fc3", "lif2")]
    with pytest.raises(NIRImportError, match="readout .LI. -> fc3.*only feed an Output"):
        load(graph, dt=DT)


def test_a_saturated_readout_is_an_error_not_a_value():
    graph, x = graph_and_input(4)
    readout = graph.nodes["readout"]     # a slow leak: the sum of mostly positive votes grows
    readout.tau[:], readout.r[:] = 4000 * DT, 4000
    imported = load(graph, dt=DT)
    got = imported.network.reference(CoreConfig(), {"input": np.ones((4000, 12), np.int64)},
                                     membranes=["readout"])
    with pytest.raises(NIRImportError, match="readout readout: the membrane reached"):
        imported.readout(got)


def test_spikefab_run_refuses_an_li_readout_in_one_line(tmp_path):
    from spikefab.nir import network_spec
    graph, _ = graph_and_input(5)
    graph.metadata = {"dt": DT}
    nir.write(tmp_path / "li.nir", graph)
    with pytest.raises(NIRImportError, match="LI readout readout needs membrane read-back") as e:
        network_spec(tmp_path / "li.nir")
    assert "\n" not in str(e.value)
