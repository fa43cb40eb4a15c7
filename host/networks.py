"""Seeded random networks and input rasters for one core: demos, tests and benchmarks."""

from __future__ import annotations

import numpy as np

from spikefab.spec import CoreConfig, NeuronParams, ResetMode

__all__ = ["random_params", "random_weights", "poisson_events", "events_to_raster"]


def random_params(cfg: CoreConfig, rng: np.random.Generator, *, threshold_scale: float = 8.0
                  ) -> NeuronParams:
    """Return varied per-neuron parameters: mixed decays, thresholds, reset modes, refractory.

    Thresholds are `threshold_scale` maximal weights (clamped to V's range) times a random factor
    in [0.5, 1.5), so a handful of coincident inputs makes a neuron fire.
    """
    n, one = cfg.n_neurons, cfg.decay_one
    w_max = cfg.weight_range[1]
    threshold = (threshold_scale * w_max * rng.uniform(0.5, 1.5, n)).astype(np.int64)
    params = NeuronParams(
        alpha=np.where(rng.random(n) < 0.3, 0, rng.integers(one // 2, one + 1, n)),
        beta=rng.integers(one // 2, one + 1, n),
        threshold=np.clip(threshold, 0, cfg.voltage_range[1]),
        bias=rng.integers(-w_max // 8, w_max // 16 + 1, n),
        refractory=rng.integers(0, min(3, (1 << cfg.refractory_width) - 1) + 1, n),
        reset=rng.choice([ResetMode.ZERO, ResetMode.SUBTRACT], n).astype(np.int64),
    )
    params.validate(cfg)
    return params


def random_weights(cfg: CoreConfig, rng: np.random.Generator, *, excitatory: float = 0.6
                   ) -> np.ndarray:
    """Return A x N weights over the full signed range, a fraction `excitatory` of them >= 0."""
    lo, hi = cfg.weight_range
    magnitude = rng.integers(0, hi + 1, (cfg.n_axons, cfg.n_neurons))
    sign = np.where(rng.random((cfg.n_axons, cfg.n_neurons)) < excitatory, 1, -1)
    weights = magnitude * sign
    weights[rng.random(weights.shape) < 0.01] = lo   # the most negative weight appears too
    return weights


def poisson_events(rng: np.random.Generator, steps: int, n_axons: int, rate) -> list[np.ndarray]:
    """Return, per step, the axons that fire (each with probability `rate`, scalar or per step),
    in a random arrival order."""
    rates = np.broadcast_to(np.asarray(rate, dtype=float), (steps,))
    events = []
    for r in rates:
        axons = np.flatnonzero(rng.random(n_axons) < r)
        events.append(rng.permutation(axons))
    return events


def events_to_raster(step_events, n_axons: int) -> np.ndarray:
    """Turn per-step axon lists into a T x A count raster (ids outside 0..A-1 are ignored)."""
    raster = np.zeros((len(step_events), n_axons), dtype=np.int64)
    for t, axons in enumerate(step_events):
        axons = np.asarray(axons, dtype=np.int64)
        axons = axons[(axons >= 0) & (axons < n_axons)]
        np.add.at(raster[t], axons, 1)
    return raster
