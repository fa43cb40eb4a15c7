"""Pieces of a seeded learning session over the host protocol (model and RTL tests)."""

import numpy as np

from spikefab.host import learning as L
from spikefab.host.networks import random_params
from spikefab.learning import RULES, Region


def random_rule(rng, cfg):
    """A named preset and every numeric register, drawn from their valid ranges."""
    rule = str(rng.choice(sorted(RULES)))
    lo, hi = cfg.weight_range
    w_min, w_max = sorted(int(v) for v in rng.integers(lo, hi + 1, 2))
    values = dict(m_unit=int(rng.integers(-40, 41)), shift=int(rng.integers(0, 8)),
                  x_decay=int(rng.integers(100, 257)), x_inc=int(rng.integers(0, 256)),
                  y_decay=int(rng.integers(100, 257)), y_inc=int(rng.integers(0, 256)),
                  window=int(rng.integers(0, 3000)), threshold=int(rng.choice([0, 0, 6, 30])),
                  period=int(rng.choice([1, 1, 2, 3])), w_min=w_min, w_max=w_max)
    return rule, values


def setup_chip(client, rng, core, routes):
    """Random params and weights on `core`, a random mask, routes: (input, axon) pairs."""
    cfg = client.config
    params = random_params(cfg.core, rng, threshold_scale=0.5)
    weights = rng.integers(-30, 45, (cfg.core.n_axons, cfg.core.n_neurons))
    mask = rng.random((cfg.core.n_axons, cfg.core.n_neurons)) < 0.8
    client.write_params(core, 0, [params.word(cfg.core, n) for n in range(cfg.core.n_neurons)])
    L.write_weight_matrix(client, core, weights)
    L.write_mask(client, core, mask)
    index = [(0, 0)] * cfg.n_sources
    dests = []
    for source, axon in routes:
        index[cfg.input_source(source)] = (len(dests), 1)
        dests.append((core, axon))
    client.write_route_index(0, index)
    client.write_route_dest(0, dests)
    return params, weights, mask


def step_inputs(rng, n_inputs, rate=0.35):
    return np.flatnonzero(rng.random(n_inputs) < rate)


def step_teaching(rng, n_neurons):
    """This step's host factors (sparse, full signed range) and target neurons."""
    factors = np.where(rng.random(n_neurons) < 0.4, rng.integers(-128, 128, n_neurons), 0)
    targets = np.flatnonzero(rng.random(n_neurons) < 0.25)
    return factors, targets


def send_teaching(client, core, factors, targets):
    if factors.any():
        L.send_factors(client, core, factors)
    L.send_targets(client, core, targets)


def read_learning_state(client, core):
    """Everything learning touches, as read over the protocol."""
    traces = L.read_traces(client, core)
    return (L.read_weight_matrix(client, core), traces,
            client.read_learn(core, Region.REGISTERS, 0, 20))
