"""Golden model of one LIF core: integer arithmetic only, vectorised over neurons.

It implements `docs/numerics.md` exactly and mirrors the gateware's blocks: `event` is the
synapse-accumulation stage, `tick` the neuron-update stage. It is the oracle of every gateware test
and fast enough to be a user's simulator (`run` processes a whole input raster).
"""

from __future__ import annotations

import numpy as np

from spikefab.spec import (
    COUNTER_MAX,
    CoreConfig,
    NeuronParams,
    ResetMode,
    mul_decay,
    pack_fields,
    param_fields,
    saturate,
    state_fields,
    unpack_fields,
)

__all__ = ["CoreModel", "lif_update"]


def lif_update(cfg: CoreConfig, params: NeuronParams, v, i, ref, acc, *, detail=False):
    """Compute one time step for every neuron; return (v, i, ref, spike) as new arrays.

    Inputs are int64 arrays of length N: membrane `v`, synaptic current `i`, refractory steps
    left `ref`, and `acc`, the exact sum of the weights of this step's input events. With
    `detail`, also return the membrane sum before the spike test `Vs` and the refractory mask
    (what the plasticity unit's surrogate factor needs).
    """
    f = cfg.decay_width
    i_next = saturate(mul_decay(i, params.alpha, f) + acc + params.bias, cfg.current_width)
    v_sum = saturate(mul_decay(v, params.beta, f) + i_next, cfg.voltage_width)
    refractory = ref > 0
    spike = ~refractory & (v_sum > params.threshold)
    v_reset = np.where(params.reset == ResetMode.SUBTRACT, v_sum - params.threshold, 0)
    v_next = np.where(refractory, v, np.where(spike, v_reset, v_sum))
    ref_next = np.where(refractory, ref - 1, np.where(spike, params.refractory, 0))
    if detail:
        return v_next, i_next, ref_next, spike, v_sum, refractory
    return v_next, i_next, ref_next, spike


class CoreModel:
    """One LIF core: weights (A x N), per-neuron parameters and state, status counters.

    Time-step semantics: `event`/`events` add inputs to the current step; `tick` updates every
    neuron once, returns the ids of the neurons that spiked in this step and advances the step.
    """

    def __init__(self, cfg: CoreConfig | None = None, params: NeuronParams | None = None,
                 weights=None):
        self.cfg = cfg = cfg or CoreConfig()
        self.params = params if params is not None else NeuronParams.zeros(cfg)
        self.params.validate(cfg)
        self.weights = np.zeros((cfg.n_axons, cfg.n_neurons), dtype=np.int64)
        if weights is not None:
            self.set_weights(weights)
        self.v = np.zeros(cfg.n_neurons, dtype=np.int64)
        self.i = np.zeros(cfg.n_neurons, dtype=np.int64)
        self.ref = np.zeros(cfg.n_neurons, dtype=np.int64)
        self.acc = np.zeros(cfg.n_neurons, dtype=np.int64)
        self.step = 0
        self.events_this_step = 0
        self.dropped_bad_axon = 0
        self.dropped_overflow = 0

    # Configuration --------------------------------------------------------------------------

    def set_weights(self, weights):
        """Replace the whole A x N weight matrix; raise `ValueError` if out of range or shape."""
        weights = np.asarray(weights, dtype=np.int64)
        shape = (self.cfg.n_axons, self.cfg.n_neurons)
        if weights.shape != shape:
            raise ValueError(f"weights must have shape {shape}, not {weights.shape}")
        lo, hi = self.cfg.weight_range
        if weights.size and (weights.min() < lo or weights.max() > hi):
            raise ValueError(f"weights must be in {lo}..{hi}")
        self.weights = weights.copy()

    def state_word(self, neuron: int) -> int:
        """Return neuron `neuron`'s packed state word, as the config port reads it."""
        return pack_fields(state_fields(self.cfg), {"v": self.v[neuron], "i": self.i[neuron],
                                                    "ref": self.ref[neuron]})

    def write_state_word(self, neuron: int, word: int):
        values = unpack_fields(state_fields(self.cfg), word)
        self.v[neuron], self.i[neuron], self.ref[neuron] = values["v"], values["i"], values["ref"]

    def param_word(self, neuron: int) -> int:
        return self.params.word(self.cfg, neuron)

    def write_param_word(self, neuron: int, word: int):
        values = unpack_fields(param_fields(self.cfg), word)
        for name, value in values.items():
            getattr(self.params, name)[neuron] = value
        self.params.validate(self.cfg)

    # Inputs ---------------------------------------------------------------------------------

    def event(self, axon: int) -> bool:
        """Add one input event on `axon` to the current step; return whether it was accepted.

        An axon outside 0..A-1 is dropped and counted in `dropped_bad_axon`; an event past
        `max_events_per_step` in this step is dropped and counted in `dropped_overflow`.
        """
        if not 0 <= axon < self.cfg.n_axons:
            self.dropped_bad_axon = min(self.dropped_bad_axon + 1, COUNTER_MAX)
            return False
        if self.events_this_step >= self.cfg.max_events_per_step:
            self.dropped_overflow = min(self.dropped_overflow + 1, COUNTER_MAX)
            return False
        self.events_this_step += 1
        self.acc += self.weights[axon]
        self._accepted(np.array([axon]))
        return True

    def events(self, axons) -> int:
        """Add events in the given order (same rules as `event`); return how many were accepted."""
        axons = np.asarray(axons, dtype=np.int64).ravel()
        valid = (axons >= 0) & (axons < self.cfg.n_axons)
        bad = int(np.count_nonzero(~valid))
        self.dropped_bad_axon = min(self.dropped_bad_axon + bad, COUNTER_MAX)
        accepted = axons[valid]
        room = self.cfg.max_events_per_step - self.events_this_step
        if accepted.size > room:
            over = accepted.size - room
            self.dropped_overflow = min(self.dropped_overflow + over, COUNTER_MAX)
            accepted = accepted[:room]
        self.events_this_step += accepted.size
        self.acc += self._weight_sum(np.bincount(accepted, minlength=self.cfg.n_axons)[None])[0]
        self._accepted(accepted)
        return int(accepted.size)

    def _accepted(self, axons):
        """Hook: `axons` (int64 array) were accepted into the current step."""

    def _weight_sum(self, counts):
        """Return counts @ weights exactly (float64 BLAS is exact below 2**53; sums < 2**36)."""
        return (counts.astype(np.float64) @ self.weights.astype(np.float64)).astype(np.int64)

    # Time step ------------------------------------------------------------------------------

    def tick(self) -> np.ndarray:
        """Update every neuron once; return the sorted ids of the neurons that spiked."""
        self.v, self.i, self.ref, spike = lif_update(
            self.cfg, self.params, self.v, self.i, self.ref, self.acc)
        self.acc = np.zeros_like(self.acc)
        self.events_this_step = 0
        self.step += 1
        return np.flatnonzero(spike)

    def run(self, raster) -> np.ndarray:
        """Run one step per row of `raster` (T x A event counts); return spikes as bool T x N.

        Events of a step arrive in ascending axon order (as `events` would take them).
        """
        raster = np.asarray(raster)
        if raster.ndim != 2 or raster.shape[1] != self.cfg.n_axons:
            raise ValueError(f"raster must have shape (T, {self.cfg.n_axons}), not {raster.shape}")
        counts = raster.astype(np.int64)
        if counts.size and counts.min() < 0:
            raise ValueError("raster event counts must be >= 0")
        inputs = self._weight_sum(counts)
        spikes = np.zeros((len(counts), self.cfg.n_neurons), dtype=bool)
        for t, row in enumerate(counts):
            total = int(row.sum())
            if self.events_this_step + total <= self.cfg.max_events_per_step:
                self.events_this_step += total
                self.acc += inputs[t]
                self._accepted(np.flatnonzero(row))
            else:
                self.events(np.repeat(np.arange(self.cfg.n_axons), row))
            spikes[t, self.tick()] = True
        return spikes
