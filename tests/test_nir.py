"""NIR import: graphs built with the `nir` package, mapped onto the Network and run on the model.

The float references below are the forward-Euler equations of docs/deploy.md written out
directly (what snnTorch's and Norse's NIR import compute), so a quantised import can be compared
spike for spike where the rounding is exact, and statistically where it is not.
"""

import nir
import numpy as np
import pytest

from spikefab.nir import NIRImportError, load
from spikefab.spec import ChipConfig, CoreConfig

DT = 1e-3


def lif_graph(w1, w2, *, tau=0.02, threshold=1.0, bias=None, v_leak=0.0, r=None, recurrent=None):
    """Input -> Affine -> LIF -> Linear -> LIF -> Output (optionally LIF1 -> W_rec -> LIF1)."""
    n_in, n_hid, n_out = w1.shape[1], w1.shape[0], w2.shape[0]
    bias = np.zeros(n_hid) if bias is None else bias

    def lif(n):
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT if r is None else r),
                       v_leak=np.full(n, v_leak), v_threshold=np.full(n, threshold),
                       v_reset=np.zeros(n))

    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Affine(weight=w1, bias=bias), "lif1": lif(n_hid),
             "fc2": nir.Linear(weight=w2), "lif2": lif(n_out),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    if recurrent is not None:
        nodes["rec"] = nir.Linear(weight=recurrent)
        edges += [("lif1", "rec"), ("rec", "lif1")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def float_lif(x, w, beta, threshold, bias=0.0):
    """Forward-Euler LIF with r = tau/dt (unit gain), reset to zero: T x n_in -> T x n_out."""
    v = np.zeros(w.shape[0])
    out = np.zeros((len(x), w.shape[0]), dtype=bool)
    for t, row in enumerate(x):
        v = beta * v + w @ row + bias
        out[t] = v > threshold
        v[out[t]] = 0.0
    return out


def test_feed_forward_lif_maps_decay_threshold_and_scale():
    rng = np.random.default_rng(1)
    print("seed=1")
    w1, w2 = rng.uniform(-0.5, 1.0, (20, 30)), rng.uniform(-0.5, 1.0, (4, 20))
    imported = load(lif_graph(w1, w2), dt=DT)
    net = imported.network
    assert set(net.inputs) == {"input"} and list(net.populations) == ["lif1", "lif2"]
    lif1 = net.populations["lif1"]
    assert lif1.params["beta"][0] == round((1 - DT / 0.02) * 4096)   # forward Euler: 0.95
    report = {r.name: r for r in imported.populations}
    scale = report["lif1"].scale
    assert report["lif1"].limited_by == "weights" and scale == pytest.approx(127 / w1.max())
    assert lif1.params["threshold"][0] == round(scale)              # threshold 1.0 * s
    weights = net.connections[0].weights
    assert weights.shape == (30, 20) and weights.max() == 127
    assert np.abs(weights / scale - w1.T).max() <= 0.5 / scale + 1e-12
    assert report["lif1"].clipped == 0 and report["lif2"].hops == 1
    assert net.populations["lif2"].record and not lif1.record
    assert "dt" not in imported.dt_source and imported.dt == DT


def test_quantised_spikes_follow_the_float_network():
    # Weights on a grid the scale represents exactly (multiples of 1/127 of the maximum) and a
    # threshold that is a whole number of units: the integer network computes the float one,
    # apart from the toward-zero rounding of the decay, which the test bounds.
    rng = np.random.default_rng(2)
    print("seed=2")
    w1 = rng.integers(-40, 128, (16, 32)) / 127.0
    w1[0, 0] = 1.0
    w2 = rng.integers(-40, 128, (3, 16)) / 127.0
    w2[0, 0] = 1.0
    imported = load(lif_graph(w1, w2, tau=DT * 16, threshold=2.0), dt=DT)
    x = (rng.random((300, 32)) < 0.15).astype(np.int64)
    got = imported.network.reference(CoreConfig(), {"input": x})
    want1 = float_lif(x, w1, 1 - 1 / 16, 2.0)
    assert got["lif1"].sum() > 100
    agreement = (got["lif1"] == want1).mean()
    assert agreement > 0.97, agreement
    ratio = got["lif1"].sum() / want1.sum()
    assert 0.9 < ratio < 1.1, ratio


def test_bias_threshold_limited_scale_and_percentile_clipping_are_reported():
    rng = np.random.default_rng(3)
    print("seed=3")
    w1, w2 = rng.uniform(0, 0.001, (8, 8)), rng.uniform(0, 1, (2, 8))
    # A threshold of 1.0 against weights of 0.001 would need a scale above 127000: it
    # would not fit 16-bit V, so the scale is lowered to fit it, and the table says so.
    imported = load(lif_graph(w1, w2), dt=DT)
    lif1 = next(r for r in imported.populations if r.name == "lif1")
    assert lif1.limited_by == "threshold"
    assert imported.network.populations["lif1"].params["threshold"][0] == 32766
    w1[0, 0] = 0.5    # one outlier: the 99th percentile sets the scale and the outlier clips
    imported = load(lif_graph(w1, w2, threshold=0.02), dt=DT, weight_percentile=99)
    lif1 = next(r for r in imported.populations if r.name == "lif1")
    assert lif1.clipped == pytest.approx(1 / 64) and lif1.limited_by == "weights"
    table = imported.table()
    assert "| lif1 | LIF | 8 |" in table and "1.56%" in table


def test_affine_bias_and_v_leak_become_the_neuron_bias():
    w1, w2 = np.eye(2) * 0.5, np.eye(2)
    graph = lif_graph(w1, w2, bias=np.array([0.25, -0.25]), v_leak=0.0)
    lif1 = load(graph, dt=DT).network.populations["lif1"]
    scale = 127 / 0.5
    assert list(lif1.params["bias"]) == [round(0.25 * scale), round(-0.25 * scale)]
    leaky = lif_graph(w1, w2, v_leak=0.5)   # (dt/tau) v_leak enters every step
    lif1 = load(leaky, dt=DT).network.populations["lif1"]
    assert lif1.params["bias"][0] == round(DT / 0.02 * 0.5 * scale)


def test_recurrent_edge_uses_the_routers_one_step_delay():
    w1, w2 = np.array([[1.0], [0.0]]), np.eye(2)
    rec = np.array([[0.0, 0.0], [1.0, 0.0]])          # lif1[0] -> lif1[1]
    imported = load(lif_graph(w1, w2, tau=DT * 2, threshold=0.5, recurrent=rec), dt=DT)
    x = np.zeros((6, 1), dtype=np.int64)
    x[1] = 1
    spikes = imported.network.reference(CoreConfig(), {"input": x})["lif1"]
    assert list(np.flatnonzero(spikes[:, 0])) == [1]
    assert list(np.flatnonzero(spikes[:, 1])) == [2]    # one step after its source


def test_cubalif_and_if_map_their_decays_and_gains():
    n = 3
    cuba = nir.CubaLIF(tau_syn=np.full(n, 4e-3), tau_mem=np.full(n, 8e-3),
                       r=np.full(n, 8e-3 / DT), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       w_in=np.full(n, 4e-3 / DT))
    integrate = nir.IF(r=np.full(n, 1 / DT), v_threshold=np.full(n, 2.0))
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}),
        "w": nir.Linear(weight=np.eye(n)), "cuba": cuba, "w2": nir.Linear(weight=np.eye(n)),
        "if": integrate, "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", "cuba"), ("cuba", "w2"), ("w2", "if"), ("if", "out")])
    net = load(graph, dt=DT).network
    c, i = net.populations["cuba"].params, net.populations["if"].params
    assert c["alpha"][0] == round(0.75 * 4096) and c["beta"][0] == round(0.875 * 4096)
    assert i["beta"][0] == 4096 and i["alpha"][0] == 0
    assert net.connections[0].weights[0, 0] == 127       # unit gains: the weight sets the scale
    assert c["threshold"][0] == 127 and i["threshold"][0] == 254


def test_nested_subgraph_and_file_round_trip(tmp_path):
    inner = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2])}),
        "lif": nir.LIF(tau=np.full(2, 0.02), r=np.full(2, 20.0), v_leak=np.zeros(2),
                       v_threshold=np.ones(2)),
        "w_rec": nir.Linear(weight=np.array([[0.0, 0.5], [0.5, 0.0]])),
        "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)), "rnn": inner,
        "out": nir.Output(output_type={"output": np.array([2])})},
        edges=[("in", "fc"), ("fc", "rnn"), ("rnn", "out")], metadata={"dt": DT})
    path = tmp_path / "model.nir"
    nir.write(path, graph)
    imported = load(path)
    assert imported.dt == DT and imported.dt_source == "graph metadata"
    net = imported.network
    assert list(net.populations) == ["rnn.lif"] and net.populations["rnn.lif"].record
    pres = sorted(c.pre.name for c in net.connections)
    assert pres == ["in", "rnn.lif"]
    net.compile(ChipConfig())


def graph_with(node, name="x"):
    n = 2
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}), "w": nir.Linear(weight=np.eye(n)),
        name: node, "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", name), (name, "out")], type_check=False)


@pytest.mark.parametrize("node, message", [
    (nir.CubaLI(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)),
     r"node x \(CubaLI\): a non-spiking readout with a synaptic current"),
    (nir.Delay(delay=np.ones(2)), r"node x \(Delay\): the chip has no programmable"),
    (nir.LIF(tau=np.full(2, 1e-4), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
     r"node x: tau must be at least dt"),
    (nir.LIF(tau=np.full(2, 100.0), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
     r"node x: decay factor .* rounds to 1"),
    (nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
             v_reset=np.full(2, 2.0)), r"node x: v_threshold below v_reset"),
    (nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.ones(2),
                 v_threshold=np.full(2, 2.0)), r"node x: CubaLIF with v_leak != v_reset"),
])
def test_unsupported_nodes_get_one_line_naming_them(node, message):
    with pytest.raises(NIRImportError, match=message) as error:
        load(graph_with(node), dt=DT)
    assert "\n" not in str(error.value)


def test_dt_must_come_from_somewhere_and_files_must_be_nir(tmp_path):
    graph = lif_graph(np.eye(2), np.eye(2))
    with pytest.raises(NIRImportError, match="metadata has no dt"):
        load(graph)
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    with pytest.raises(NIRImportError, match="bad.nir: not a readable NIR file"):
        load(bad, dt=DT)
    with pytest.raises(NIRImportError, match="no such file"):
        load(tmp_path / "missing.nir", dt=DT)


def write_sample_model(path):
    """A 128-input graph that fits the bundled sample pooled to 2 x 8 x 8 cells."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.uniform(-0.1, 0.4, (20, 128)), rng.uniform(-0.2, 0.6, (4, 20))
    graph = lif_graph(w1, w2)
    graph.metadata = {"dt": DT}
    nir.write(path, graph)
    return path


def test_cli_import_prints_placement_resources_and_the_table(tmp_path, capsys):
    from spikefab.cli import main
    path = write_sample_model(tmp_path / "model.nir")
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dt: 1000 us (graph metadata)" in out
    assert "lif1: 20 neurons on core 0 neurons 0..19" in out
    assert "lif2: 4 neurons on core 0 neurons 20..23 (recorded)" in out
    assert "24 of 1024 neurons" in out and "| lif1 | LIF | 20 |" in out
    assert main(["import", str(path), "--dt", "100000"]) == 2   # tau 20 ms < dt: one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "node lif1: tau must be at least dt = 0.1 s" in err


def test_cli_run_streams_the_sample_through_a_nir_network(tmp_path, capsys):
    from spikefab.cli import main
    path = write_sample_model(tmp_path / "model.nir")
    out = tmp_path / "out"
    assert main(["run", "--network", str(path), "--pool", "8", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "model.nir (NIR): lif1 20, lif2 4" in text and "dt 1000 us" in text
    spikes = np.load(out / "spikes.npz")
    assert spikes["spikes_lif2"].any()


def test_synapses_that_round_to_zero_are_reported():
    w1 = np.array([[1.0, 0.001], [0.5, 0.25]])
    imported = load(lif_graph(w1, np.eye(2)), dt=DT)
    lif1 = imported.populations[0]
    assert lif1.notes == ["1 of 4 synapses round to weight 0"]
    assert "- lif1: 1 of 4 synapses round to weight 0" in imported.table()
