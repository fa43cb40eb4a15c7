"""The trained-network example (examples/train_nir.py): the shipped NIR model imports and runs on
the golden model (batched) and bit-exactly on the gateware without torch; a reduced training run
(torch, snnTorch: optional) still learns and loses at most 1 point to quantisation."""

import numpy as np
import pytest
from test_examples import example

from spikefab.nir import load


@pytest.fixture(scope="module")
def train_nir():
    return example("train_nir")


@pytest.fixture(scope="module")
def fresh_test_set(train_nir, tmp_path_factory):
    seed = 11     # not the seed the shipped model was trained or tested with
    print(f"seed {seed}")
    return train_nir.film({"fresh": 200}, seed, tmp_path_factory.mktemp("clips"))["fresh"]


def test_the_shipped_model_classifies_fresh_clips_on_the_golden_model(train_nir, fresh_test_set):
    x, y = fresh_test_set
    imported = load(train_nir.MODEL)                 # dt from the file's metadata
    assert imported.dt == train_nir.DT
    assert [p.limited_by for p in imported.populations] == ["weights", "weights"]
    assert all(p.clipped == 0 for p in imported.populations)
    counts = train_nir.golden_counts(imported, x)
    accuracy = (counts.argmax(axis=1) == y).mean()
    print(f"accuracy {accuracy:.1%} on {len(y)} fresh clips, chance {1 / train_nir.N_OUT:.1%}")
    assert accuracy >= 0.9
    # Batched evaluation is the per-sample model: spot-check two clips one by one.
    for k in (0, 7):
        alone = imported.network.reference(train_nir.RTL_CHIP.core, {"input": x[k]})["lif2"]
        assert np.array_equal(alone.sum(axis=0), counts[k])


def test_the_shipped_model_runs_bit_exactly_on_the_gateware(train_nir, fresh_test_set):
    x, _ = fresh_test_set
    spikes = train_nir.check_on_gateware(load(train_nir.MODEL), x, 4)   # raises if not equal
    assert spikes > 4


def test_reduced_training_learns_and_quantisation_costs_at_most_one_point(train_nir, tmp_path):
    pytest.importorskip("torch", reason="torch (optional extra) is not installed")
    pytest.importorskip("snntorch", reason="snnTorch (optional extra) is not installed")
    result = train_nir.main(["--train", "800", "--test", "300", "--epochs", "4", "--rtl", "0",
                             "--model", str(tmp_path / "m.nir"), "--plot",
                             str(tmp_path / "curve.png")])
    assert result["float"] >= 0.85, result["float"]
    assert result["float"] - result["quantised"] <= 0.01
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert load(tmp_path / "m.nir").network.populations["lif2"].record


def test_fake_quantisation_rounds_the_weights_as_the_import_does(train_nir):
    """Quantisation-aware fine-tuning trains through the very integers `load` will make."""
    torch = pytest.importorskip("torch", reason="torch (optional extra) is not installed")
    snn = pytest.importorskip("snntorch", reason="snnTorch (optional extra) is not installed")
    torch.manual_seed(3)
    print("seed=3")
    net = train_nir.build(torch, snn)
    net.quantise = True
    imported = load(train_nir.to_nir(net))
    for layer, conn, report in zip((net.fc1, net.fc2), imported.network.connections,
                                   imported.populations):
        fake = net.weight(layer).detach().numpy().astype(np.float64)
        assert np.allclose(fake * report.scale, conn.weights.T, atol=1e-3)
        assert report.limited_by == "weights"
