"""The NIR import against Norse's own NIR import (optional: torch, `norse==1.1.0 --no-deps`,
`nirtorch==2.6`; see ../shared/TOOLCHAIN.md). Without them the test skips and says so.

Same graph, same dt: Norse integrates it with forward Euler in float32; spikefab quantises it
(weights on a grid the scale represents exactly, a threshold of a whole number of units) and
runs the golden model. The chip delivers each population hop one step later, so the output
layer's spikes are compared shifted by one step.
"""

import numpy as np
import pytest

from spikefab.nir import load, run_in_norse
from spikefab.spec import CoreConfig

torch = pytest.importorskip("torch", reason="torch (optional extra) is not installed")
norse = pytest.importorskip("norse", reason="norse (optional, --no-deps) is not installed",
                            exc_type=ImportError)

DT = 1e-3


@pytest.mark.parametrize("seed", [2, 3])
def test_spikes_equal_norses_import_one_step_later(seed):
    from test_nir import lif_graph
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-40, 128, (16, 32)) / 127.0
    w1[0, 0] = 1.0
    w2 = rng.integers(-40, 128, (3, 16)) / 127.0
    w2[0, 0] = 1.0
    graph = lif_graph(w1, w2, tau=DT * 16, threshold=0.125, r=1.0)   # Norse assumes r = 1
    x = (rng.random((300, 32)) < 0.15).astype(np.int64)
    theirs = run_norse(graph, x)
    ours = load(graph, dt=DT).network.reference(CoreConfig(), {"input": x})["lif2"]
    assert theirs.sum() > 100
    agreement = (ours[1:] == theirs[:-1]).mean()
    print(f"agreement {agreement:.4f}, spikes {ours.sum()} vs {theirs.sum()}")
    assert agreement >= 0.99


@pytest.mark.parametrize("seed", [4, 5])
def test_norse_runs_an_exported_network_like_the_golden_model(seed):
    """export -> Norse's own NIR import: the float run follows the integer one (the chip's
    toward-zero decay rounding is the only difference), the output one step later."""
    from spikefab.host.network import Network
    from spikefab.nir import export
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    net = Network()
    x = net.add_input("x", 32)
    hidden = net.add_population("hidden", 16, beta=rng.integers(3500, 4000, 16), threshold=256)
    out = net.add_population("out", 4, beta=3840, threshold=256, record=True)
    net.connect(x, hidden, rng.integers(-40, 120, (32, 16)))
    net.connect(hidden, out, rng.integers(-30, 110, (16, 4)))
    spikes = (rng.random((300, 32)) < 0.15).astype(np.int64)
    ours = net.reference(CoreConfig(), {"x": spikes})["out"]
    theirs = run_norse(export(net, DT), spikes)
    assert ours.sum() > 100
    agreement = (ours[1:] == theirs[:-1]).mean()
    print(f"agreement {agreement:.4f}, spikes {ours.sum()} vs {theirs.sum()}")
    assert agreement >= 0.99


def run_norse(graph, x, dt=DT):
    return run_in_norse(graph, x, dt)


def test_norse_classifies_the_shipped_trained_model_as_the_golden_model(tmp_path):
    """examples/models/bars_direction.nir, imported then exported again (r = 1, which Norse
    needs: it ignores r), run by Norse and by the golden model on freshly filmed clips."""
    from test_examples import example

    from spikefab.nir import export
    train_nir = example("train_nir")
    seed = 13
    print(f"seed={seed}")
    x, _ = train_nir.film({"norse": 60}, seed, tmp_path)["norse"]
    net = load(train_nir.MODEL).network
    ours = net.reference(CoreConfig(), {"input": x})["lif2"]
    theirs = run_norse(export(net, train_nir.DT), x, train_nir.DT)
    assert theirs.sum() > 100
    agreement = (ours[:, 1:] == theirs[:, :-1]).mean()
    classes = (ours.sum(axis=1).argmax(axis=1) == theirs.sum(axis=1).argmax(axis=1)).mean()
    print(f"agreement {agreement:.4f}, classes {classes:.3f}, spikes {ours.sum()} vs "
          f"{theirs.sum()}")
    assert agreement >= 0.99 and classes >= 0.95
