"""Conv2d, SumPool2d and AvgPool2d lowered to dense synapse blocks (spikefab/nir_lower.py).

Checked against torch's own convolution and pooling where torch is installed (optional extra),
on hand-counted cases without it, and end to end against Norse's NIR import of a small CNN.
"""

import nir
import numpy as np
import pytest

from spikefab.nir import NIRImportError, load, run_in_norse
from spikefab.nir_lower import lower
from spikefab.spec import CoreConfig

DT = 1e-3


def conv(weight, shape, stride=1, padding=0, dilation=1, groups=1, bias=None):
    return nir.Conv2d(input_shape=shape, weight=weight, stride=stride, padding=padding,
                      dilation=dilation, groups=groups,
                      bias=np.zeros(weight.shape[0]) if bias is None else bias)


def pool(kind, k, s, p=0):
    cls = nir.SumPool2d if kind == "SumPool2d" else nir.AvgPool2d
    return cls(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([p, p]))


CONVS = [dict(), dict(stride=2), dict(padding=1), dict(dilation=2), dict(padding="same"),
         dict(stride=(2, 1), padding=(1, 0))]


@pytest.mark.parametrize("options", CONVS)
def test_conv2d_block_equals_torch(options):
    torch = pytest.importorskip("torch", reason="torch (optional extra) is not installed")
    rng = np.random.default_rng(1)
    print("seed=1")
    groups = 2 if options == dict() else 1
    weight = rng.normal(size=(4, 4 // groups, 3, 3))
    bias = rng.normal(size=4)
    x = rng.normal(size=(4, 7, 6))
    node = conv(weight, (7, 6), groups=groups, bias=bias, **options)
    matrix, b, out = lower(node, "Conv2d", x.shape)
    want = torch.nn.functional.conv2d(torch.tensor(x[None]), torch.tensor(weight),
                                      torch.tensor(bias), groups=groups,
                                      **{k: v for k, v in options.items()})[0].numpy()
    assert out == want.shape
    assert np.allclose(matrix @ x.ravel() + b, want.ravel())


@pytest.mark.parametrize("kind,k,s,p", [("SumPool2d", 2, 2, 0), ("AvgPool2d", 2, 2, 0),
                                        ("AvgPool2d", 3, 2, 1), ("SumPool2d", 3, 1, 1)])
def test_pooling_block_equals_torch(kind, k, s, p):
    torch = pytest.importorskip("torch", reason="torch (optional extra) is not installed")
    x = np.random.default_rng(2).normal(size=(3, 6, 7))
    matrix, b, out = lower(pool(kind, k, s, p), kind, x.shape)
    want = torch.nn.functional.avg_pool2d(torch.tensor(x[None]), k, s, p)[0].numpy()
    if kind == "SumPool2d":
        want = want * k * k
    assert out == want.shape and not b.any()
    assert np.allclose(matrix @ x.ravel(), want.ravel())


def test_sum_pooling_by_hand():
    matrix, _, out = lower(pool("SumPool2d", 2, 2), "SumPool2d", (1, 4, 4))
    assert out == (1, 2, 2) and matrix.shape == (4, 16)
    assert (matrix.sum(axis=1) == 4).all() and (matrix.sum(axis=0) == 1).all()
    assert np.flatnonzero(matrix[3]).tolist() == [10, 11, 14, 15]   # rows 2-3, columns 2-3
    matrix, bias, out = lower(conv(np.ones((1, 1, 1, 1)), (3, 3), padding=1,
                                   bias=np.array([0.5])), "Conv2d", (1, 3, 3))
    assert out == (1, 5, 5) and matrix.sum() == 9 and (bias == 0.5).all()


def cnn_graph(rng):
    """(1, 6, 6) -> Conv2d 2x3x3 -> LIF (2, 4, 4) -> SumPool2d 2 -> LIF (2, 2, 2) -> Output."""
    def lif(shape):
        return nir.LIF(tau=np.full(shape, 8 * DT), r=np.ones(shape), v_leak=np.zeros(shape),
                       v_threshold=np.full(shape, 0.25), v_reset=np.zeros(shape))
    weight = rng.integers(-20, 128, (2, 1, 3, 3)) / 127.0
    weight[0, 0, 0, 0] = 1.0
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
             "conv": conv(weight, (6, 6)), "lif1": lif((2, 4, 4)),
             "pool": pool("SumPool2d", 2, 2), "lif2": lif((2, 2, 2)),
             "output": nir.Output(output_type={"output": np.array([2, 2, 2])})}
    edges = [("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


def test_a_small_cnn_imports_with_its_shapes_checked():
    graph = cnn_graph(np.random.default_rng(3))
    imported = load(graph)
    net = imported.network
    assert net.inputs["input"].size == 36
    assert [(p.name, p.size) for p in net.populations.values()] == [("lif1", 32), ("lif2", 8)]
    assert [c.weights.shape for c in net.connections] == [(36, 32), (32, 8)]
    # Each pooled neuron sums a 2 x 2 window of one channel: 4 synapses of equal weight.
    pooled = net.connections[1].weights
    assert ((pooled != 0).sum(axis=0) == 4).all() and len(np.unique(pooled[pooled != 0])) == 1
    x = (np.random.default_rng(4).random((50, 36)) < 0.3).astype(np.int64)
    out = net.reference(CoreConfig(), {"input": x})
    assert out["lif1"].sum() > 50 and out["lif2"].sum() > 10


def test_pooling_of_a_flat_layer_and_oversized_blocks_are_refused():
    graph = cnn_graph(np.random.default_rng(5))
    flat = graph.nodes["lif1"]
    graph.nodes["lif1"] = nir.LIF(**{k: np.ravel(getattr(flat, k)) for k in
                                     ("tau", "r", "v_leak", "v_threshold", "v_reset")})
    graph.nodes["pool"].input_type = {"input": None}
    with pytest.raises(NIRImportError, match=r"node pool \(SumPool2d\): needs a \(channels"):
        load(graph)
    big = cnn_graph(np.random.default_rng(6))
    big.nodes["input"] = nir.Input(input_type={"input": np.array([1, 200, 200])})
    big.nodes["conv"] = conv(np.ones((2, 1, 3, 3)), (200, 200))
    with pytest.raises(NIRImportError, match=r"node conv \(Conv2d\): a dense block .* too large"):
        load(big)


def test_norse_runs_the_cnn_like_the_golden_model():
    pytest.importorskip("torch", reason="torch (optional extra) is not installed")
    pytest.importorskip("norse", reason="norse (optional, --no-deps) is not installed",
                        exc_type=ImportError)
    seed = 7
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    graph = cnn_graph(rng)
    x = (rng.random((200, 36)) < 0.3).astype(np.int64)
    ours = load(graph).network.reference(CoreConfig(), {"input": x})["lif2"]
    theirs = run_in_norse(graph, x, DT, input_shape=(1, 6, 6))
    assert theirs.sum() > 50
    agreement = (ours[1:] == theirs[:-1]).mean()      # one hop: one step later on the chip
    print(f"agreement {agreement:.4f}, spikes {ours.sum()} vs {theirs.sum()}")
    assert agreement >= 0.98
