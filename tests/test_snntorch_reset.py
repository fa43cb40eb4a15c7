"""docs/numerics.md "Relation to snnTorch", checked against snnTorch itself (optional extra).

snnTorch needs torch (`pip install torch==2.13.0 snntorch==1.0.0`, see ../shared/TOOLCHAIN.md);
without it these tests skip and say so. Inputs are multiples of 2**10 and beta = 1/2 over at
most 10 steps, so our integer model never rounds: the comparison is the float limit, exactly.
"""

import numpy as np
import pytest

from spikefab.sim.lif import lif_update
from spikefab.spec import CoreConfig, NeuronParams, ResetMode

snntorch = pytest.importorskip("snntorch", reason="snnTorch (optional extra) is not installed",
                               exc_type=ImportError)
torch = pytest.importorskip("torch", reason="torch (optional extra) is not installed")

CFG = CoreConfig(n_neurons=1, n_axons=1, weights_per_word=1, voltage_width=32,
                 current_width=32)
UNIT = 1 << 10


def ours(inputs, threshold, reset):
    params = NeuronParams.uniform(CFG, beta=CFG.decay_one // 2, threshold=threshold,
                                  reset=reset)
    v = i = ref = np.zeros(1, dtype=np.int64)
    out = []
    for x in inputs:
        v, i, ref, spike = lif_update(CFG, params, v, i, ref, np.array([x]))
        out.append(int(spike[0]))
    return out


def theirs(inputs, threshold, reset, reset_delay):
    lif = snntorch.Leaky(beta=0.5, threshold=float(threshold), reset_mechanism=reset,
                         reset_delay=reset_delay)
    mem = lif.init_leaky()
    out = []
    with torch.no_grad():
        for x in inputs:
            spike, mem = lif(torch.tensor([float(x)], dtype=torch.float64), mem)
            out.append(int(spike[0]))
    return out


def test_the_documented_example_differs_as_documented():
    theta = 4 * UNIT
    inputs = [10 * UNIT, 2 * UNIT, 0, 0]           # 2.5 theta, 0.5 theta, 0, 0
    assert ours(inputs, theta, ResetMode.SUBTRACT) == [1, 1, 0, 0]
    assert theirs(inputs, theta, "subtract", reset_delay=False) == [1, 0, 0, 0]
    assert theirs(inputs, theta, "subtract", reset_delay=True) == [1, 0, 0, 0]


def random_inputs(seed, lo, hi, count=40):
    """`count` seeded input sequences of 10 steps, multiples of UNIT in lo..hi-1."""
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    return [list(rng.integers(lo, hi, 10) * UNIT) for _ in range(count)]


@pytest.mark.parametrize("seed", range(5))
def test_zero_reset_equals_snntorch_with_either_reset_delay(seed):
    theta = 4 * UNIT
    for inputs in random_inputs(seed, -2, 9):
        want = ours(inputs, theta, ResetMode.ZERO)
        assert theirs(inputs, theta, "zero", reset_delay=False) == want, inputs
        assert theirs(inputs, theta, "zero", reset_delay=True) == want, inputs


@pytest.mark.parametrize("seed", range(5))
def test_subtract_reset_equals_reset_delay_false_while_inputs_stay_below_theta(seed):
    theta = 4 * UNIT
    for inputs in random_inputs(seed, -4, 5):   # every current at most theta
        assert theirs(inputs, theta, "subtract", reset_delay=False) == \
            ours(inputs, theta, ResetMode.SUBTRACT), inputs
