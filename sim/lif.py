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

__all__ = ["CoreModel", "BatchLIF", "WeightSums", "lif_update", "exact_weight_sums"]

#: Integers up to 2**24 (float32) and 2**53 (float64) are exact, and so is every sum of them
#: that stays within that bound: the condition for a BLAS product to equal the integer one.
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
#: Batches of at most this many neurons reset with masked NumPy operations (cheapest while the
#: per-call cost dominates), larger ones with plain float arithmetic (see `BatchLIF.step`).
MASKED_MAX = 2048
#: Weight columns packed into one float64 column of the weight sums, at most and at least;
#: 3 only where the packed product is still this many columns wide (measured: narrower float64
#: products run below BLAS's full rate and lose to float32 at 3).
PACK_MAX, PACK_MIN = 8, 4
PACK_3_COLUMNS = 256


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


class WeightSums:
    """Exact products `counts @ weights` by BLAS, for a fixed A x N integer weight matrix.

    Each result, and each partial sum BLAS forms on the way, is bounded by (row total of counts)
    x max|w|: float32 BLAS is used when that bound is at most 2**24 (binary spikes on up to 2**17
    axons of 8-bit weights), float64 when it is at most 2**53, otherwise `ValueError`. For many
    rows with small sums, k weight columns share one float64 column (`packing`): one float64
    product of N/k columns then replaces the float32 one of N columns (float64 BLAS costs about
    twice float32 per multiply-add; measured, k >= 4 is faster, k = 3 on wide layers only).
    """

    def __init__(self, weights):
        self.weights = np.asarray(weights)
        #: (lowest, highest) weight widened to include 0: a row of at most E events sums within
        #: E times this range.
        self.span = (int(self.weights.min(initial=0)), int(self.weights.max(initial=0)))
        self.largest = max(-self.span[0], self.span[1])     # max|w|
        self._cast = {}
        self._packed = (None, None)

    def dtype(self, max_row_total: int):
        """The float type in which rows of at most `max_row_total` events sum exactly."""
        bound = int(max_row_total) * self.largest
        if bound <= FLOAT32_EXACT:
            return np.float32
        if bound <= FLOAT64_EXACT:
            return np.float64
        raise ValueError(f"weight sums up to {bound} exceed 2**53 and cannot be formed exactly")

    def packing(self, max_row_total: int) -> tuple[int, int]:
        """Return (k, s): k columns packed per float64 column, s bits apart, for rows of at most
        `max_row_total` events (k = 1: no packing).

        Column j + i * ceil(N/k) contributes w * 2**(i*s). Every field sum f_i has |f_i| <= M =
        max_row_total x max|w| < 2**(s-1), and every partial sum of the packed product has
        magnitude <= max_row_total x max|w| x sum_i 2**(i*s) <= 2**53, so the product is an exact
        integer and its fields come apart exactly (`_unpack`).
        """
        bound = int(max_row_total) * self.largest
        if self._packed[0] and self._fits(*self._packed[0], bound):
            return self._packed[0]      # the packing prepared already serves these rows too
        shift = bound.bit_length() + 1
        wide = -(-self.weights.shape[1] // 3) >= PACK_3_COLUMNS
        for fields in range(PACK_MAX, (3 if wide else PACK_MIN) - 1, -1):
            if self._fits(fields, shift, bound):
                return fields, shift
        return 1, 0

    @staticmethod
    def _fits(fields: int, shift: int, bound: int) -> bool:
        """Whether fields of magnitude <= `bound` pack exactly k = `fields` to a float64."""
        return (bound < 1 << (shift - 1)
                and bound * sum(1 << (i * shift) for i in range(fields)) <= FLOAT64_EXACT)

    def plan(self, max_row_total: int, pack: bool = True) -> tuple[type, int, int]:
        """Return (float type the counts take, k, s) for rows of at most `max_row_total` events:
        k columns packed s bits apart (`packing`, used when `pack`), or k = 1
        and the float type of `dtype`."""
        fields, shift = self.packing(max_row_total) if pack else (1, 0)
        return (np.float64 if fields > 1 else self.dtype(max_row_total)), fields, shift

    def weights_as(self, dtype) -> np.ndarray:
        if dtype not in self._cast:
            self._cast[dtype] = self.weights.astype(dtype)
        return self._cast[dtype]

    def _packed_weights(self, fields: int, shift: int) -> np.ndarray:
        """The A x ceil(N/k) float64 packed weights; only the latest packing is kept."""
        if self._packed[0] != (fields, shift):
            n_axons, n = self.weights.shape
            columns = -(-n // fields)
            padded = np.zeros((n_axons, fields * columns))
            padded[:, :n] = self.weights
            packed = padded[:, :columns].copy()
            for i in range(1, fields):
                packed += padded[:, i * columns:(i + 1) * columns] * float(1 << (i * shift))
            self._packed = ((fields, shift), packed)
        return self._packed[1]

    def __call__(self, counts, max_row_total: int | None = None, *, pack: bool = True):
        """Return counts (R x A, non-negative) @ weights (R x N) as floats holding exact integers.

        With `pack` (and a `packing` of k > 1) the result is float64 from the packed
        product; otherwise float32 or float64 as `dtype` chooses.
        """
        if max_row_total is None:
            max_row_total = int(np.asarray(counts).sum(axis=-1, dtype=np.int64).max(initial=0))
        dtype, fields, shift = self.plan(max_row_total, pack)
        counts = np.asarray(counts, dtype=dtype)
        if fields == 1:
            return counts @ self.weights_as(dtype)
        product = counts @ self._packed_weights(fields, shift)
        return self._unpack(product, fields, shift)[:, :self.weights.shape[1]]

    @staticmethod
    def _unpack(rest, fields: int, shift: int) -> np.ndarray:
        """Split each packed value r = sum_i f_i 2**(i*s) (|f_i| < 2**(s-1)) into its fields:
        f_0 = r - rint(r / 2**s) * 2**s, exactly, since |f_0 / 2**s| < 1/2 and scaling by a power
        of two is exact; then the same for rint(r / 2**s). Overwrites `rest`."""
        rows, columns = rest.shape
        out = np.empty((rows, fields * columns))
        high, low = np.empty_like(rest), np.empty_like(rest)
        for i in range(fields - 1):
            # Contiguous temporaries, one write into the strided block: about twice as fast
            # as two operations on the block.
            top = out[:, (fields - 1) * columns:] if i == fields - 2 else high
            np.multiply(rest, 2.0 ** -shift, out=top)
            np.rint(top, out=top)
            np.multiply(top, 2.0 ** shift, out=low)
            np.subtract(rest, low, out=out[:, i * columns:(i + 1) * columns])
            rest, high = top, rest
        return out


def exact_weight_sums(counts, weights) -> np.ndarray:
    """Return `counts @ weights` exactly, as floats holding integers (see `WeightSums`)."""
    return WeightSums(weights)(counts)


class BatchLIF:
    """B independent copies of N neurons (parameters shared), advanced exactly as `lif_update`.

    State `v`, `i`, `ref` is B x N float64 holding integers. Every value stays below 2**53
    (|V|, |I| < 2**31, |acc| < 2**36, decay products |x| * 2**(F+1) < 2**48), so each float
    operation is exact and trunc(x * (m / 2**F)) is the spec's round-toward-zero product.
    `params` may hold any number N of neurons; only the widths of `cfg` are used.
    """

    def __init__(self, cfg: CoreConfig, params: NeuronParams, batch: int, state=None):
        scale = 2.0 ** -cfg.decay_width
        self.alpha = params.alpha * scale
        self.beta = params.beta * scale
        self.threshold = params.threshold.astype(np.float64)
        self.bias = params.bias.astype(np.float64)
        self.refractory = params.refractory.astype(np.float64)
        self.subtract = params.reset == ResetMode.SUBTRACT
        self.i_range = cfg.current_range
        self.v_range = cfg.voltage_range
        shape = (batch, len(self.threshold))
        v, i, ref = state if state is not None else (0, 0, 0)
        self.v, self.i, self.ref = (np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()
                                    for x in (v, i, ref))
        # Shortcuts that change no result: each is decided once from the parameters.
        self._decays_current = bool(self.alpha.any())
        self._refractory = bool(self.refractory.any() or self.ref.any())
        self._reset_mode = ("subtract" if self.subtract.all() else
                            "zero" if not self.subtract.any() else "mixed")
        self._saturate_v = (True, True)     # whether sat_WV may act at its (low, high) end
        self._masked = self.v.size <= MASKED_MAX
        self._beta_op, self._threshold_op = self._operand(self.beta), self._operand(self.threshold)

    def _operand(self, values: np.ndarray) -> np.ndarray:
        """A length-N parameter as the cheapest operand against the B x N state: a 0-d array
        when all its entries are equal, else the full B x N array (broadcasting a row over
        B x N costs NumPy about twice as much, and a Python float more than a 0-d array)."""
        if values.size and (values == values.flat[0]).all():
            return np.array(float(values.flat[0]))
        return np.ascontiguousarray(np.broadcast_to(values, self.v.shape))

    def currents(self, acc, bound: float | None = None) -> np.ndarray:
        """Return sat_WI(acc + bias) for any leading shape: the current when alpha is 0.

        With `bound` >= max|acc| given, the sum is left in acc's float type when it stays exact
        (acc + bias within 2**24 for float32) and the saturation is skipped when it cannot act.
        """
        lo, hi = self.i_range
        if bound is not None:
            reach = bound + float(np.abs(self.bias).max(initial=0.0))
            exact = acc.dtype == np.float64 or reach <= FLOAT32_EXACT
            if exact and reach <= min(-lo, hi):
                return acc + self.bias if self.bias.any() else acc
        return np.clip(acc + self.bias, lo, hi)

    def run(self, acc, bound: float | None = None, span=None) -> np.ndarray:
        """Advance T steps; `acc` is T x B x N input sums (|acc| <= `bound` if given, and
        span[0] <= acc <= span[1] if `span` is given, which spares a pass over them); return
        T x B x N bool spikes."""
        spikes = np.empty(acc.shape, dtype=bool)
        currents = None if self._decays_current else self.currents(acc, bound)
        if currents is not None:   # once here, not in every step's addition to float64 V
            currents = currents.astype(np.float64, copy=False)
        self._saturate_v = self._v_saturation_ends(currents, span)
        try:
            if currents is not None and not self._refractory and len(acc):
                self._run_plain(currents, spikes)
            else:
                for t in range(len(acc)):
                    spikes[t] = self.step(acc[t], None if currents is None else currents[t])
        finally:
            self._saturate_v = (True, True)
        return spikes

    def _run_plain(self, currents, spikes):
        """`step` over T precomputed currents for neurons without alpha or refractory period:
        the same operations on preallocated buffers, without per-step allocation or dispatch
        (out arguments are positional: at batch 1 a ufunc call's parsing is most of its cost)."""
        multiply, trunc, add, subtract, greater = (np.multiply, np.trunc, np.add, np.subtract,
                                                   np.greater)
        maximum, minimum, copyto = np.maximum, np.minimum, np.copyto
        beta, threshold = self._beta_op, self._threshold_op
        lo, hi = (np.array(float(x)) for x in self.v_range)
        (floor, ceiling), masked = self._saturate_v, self._masked
        zero, mixed = self._reset_mode == "zero", self._reset_mode == "mixed"
        v, v_sum, fired = self.v, np.empty_like(self.v), np.empty_like(self.v)
        for current, spike, byte in zip(currents, spikes, spikes.view(np.uint8)):
            multiply(v, beta, v_sum)
            trunc(v_sum, v_sum)
            add(v_sum, current, v_sum)
            if floor:
                maximum(v_sum, lo, out=v_sum)
            if ceiling:
                minimum(v_sum, hi, out=v_sum)
            greater(v_sum, threshold, spike)
            if masked and zero:
                copyto(v_sum, 0.0, where=spike)
            elif masked:
                subtract(v_sum, self._reset_amount(v_sum) if mixed else threshold, out=v_sum,
                         where=spike)
            else:   # see `step`: the reset as arithmetic on the spike's 0/1 bytes
                multiply(self._reset_amount(v_sum), byte, fired)
                subtract(v_sum, fired, v_sum)
            v, v_sum = v_sum, v
        self.v, self.i = v, currents[-1]

    def _v_may_saturate(self, currents, span=None) -> bool:
        """Whether sat_WV can act in this run (at either end, see `_v_saturation_ends`)."""
        return any(self._v_saturation_ends(currents, span))

    def _v_saturation_ends(self, currents, span=None) -> tuple[bool, bool]:
        """Whether sat_WV can act at its (low, high) end in this run, from bounds V stays
        within by induction.

        With b = max beta, currents in [c_lo, c_hi] (c_lo <= 0 <= c_hi) and thresholds in
        [t_lo, t_hi]: V <= U = max(V0, t_hi, (c_hi - t_lo) / (1 - b)) (after a spike V is 0 or
        Vs - theta <= bU + c_hi - t_lo <= U; without one V = Vs <= theta), the last term only
        with a subtract reset; V >= L = min(V0, 0, c_lo / (1 - b)). rtz only shrinks |beta V|,
        so Vs lies in [bL + c_lo, bU + c_hi], and saturation cannot act while that fits W_V.
        At b = 1 the bounds hold only where the matching terms vanish. [c_lo, c_hi] comes from
        the currents themselves, or from `span` (bounds of acc) plus the bias range.
        """
        b = float(self.beta.max(initial=0.0))
        if currents is None:
            c_lo, c_hi = self.i_range
        elif span is not None:
            c_lo = min(max(span[0] + float(self.bias.min(initial=0.0)), self.i_range[0]), 0.0)
            c_hi = max(min(span[1] + float(self.bias.max(initial=0.0)), self.i_range[1]), 0.0)
        else:
            c_lo = min(float(currents.min(initial=0.0)), 0.0)
            c_hi = max(float(currents.max(initial=0.0)), 0.0)
        t_lo, t_hi = float(self.threshold.min(initial=0.0)), float(self.threshold.max(initial=0.0))
        upper = [float(self.v.max(initial=0.0)), t_hi]
        lower = [float(self.v.min(initial=0.0)), 0.0]
        climb = c_hi - t_lo if self._reset_mode != "zero" else 0.0
        ends = []
        for bound, rise, current, end in ((lower, c_lo, c_lo, self.v_range[0]),
                                          (upper, climb, c_hi, self.v_range[1])):
            if rise and b >= 1.0:
                ends.append(True)
                continue
            if rise:
                bound.append(rise / (1.0 - b))
            reach = b * (min(bound) if end < 0 else max(bound)) + current
            ends.append(abs(reach) + 1e-9 * abs(reach) + 1 >= abs(end))   # float rounding
        return ends[0], ends[1]

    def step(self, acc, current=None) -> np.ndarray:
        """Advance one step with input sums `acc` (B x N); return the B x N bool spikes.

        `current` may carry `currents(acc)` precomputed (only valid when alpha is 0 everywhere).
        """
        if current is None:
            current = np.trunc(self.i * self.alpha) if self._decays_current else 0.0
            current = self.currents(current + acc)
        self.i = current
        v_sum = np.multiply(self.v, self._beta_op)
        np.trunc(v_sum, out=v_sum)
        v_sum += current
        if self._saturate_v[0]:
            np.maximum(v_sum, self.v_range[0], out=v_sum)
        if self._saturate_v[1]:
            np.minimum(v_sum, self.v_range[1], out=v_sum)
        if self._refractory:
            return self._step_refractory(v_sum)
        if self._masked:
            spike = v_sum > self._threshold_op
            np.subtract(v_sum, self._reset_amount(v_sum), out=v_sum, where=spike)
            self.v = v_sum
            return spike
        # On large arrays a masked operation costs several times more than arithmetic once the
        # spikes are irregular (a branch per element): subtract amount x spike, the bool's bytes
        # read as 0/1 (exact: x - x is 0, x - 0 * x is x).
        spike = v_sum > self._threshold_op
        v_sum -= np.multiply(self._reset_amount(v_sum), spike.view(np.uint8))
        self.v = v_sum
        return spike

    def _reset_amount(self, v_sum):
        """What a spike subtracts from `v_sum`: the threshold, or v_sum itself (reset to zero)."""
        if self._reset_mode == "subtract":
            return self._threshold_op
        if self._reset_mode == "zero":
            return v_sum
        return np.where(self.subtract, self.threshold, v_sum)

    def _step_refractory(self, v_sum):
        refractory = self.ref > 0
        spike = (v_sum > self.threshold) & ~refractory
        v_sum = np.where(spike, v_sum - self._reset_amount(v_sum), v_sum)
        self.v = np.where(refractory, self.v, v_sum)
        self.ref = np.where(refractory, self.ref - 1, np.where(spike, self.refractory, 0.0))
        return spike


def accepted_counts(counts, room) -> np.ndarray:
    """Return the event counts a core accepts when it takes at most `room` events per row.

    Events of a row arrive in ascending axon order, so the first `room` are accepted: axon a
    keeps min(count, room - events before it), clipped at 0. `room` broadcasts over the rows.
    """
    before = np.cumsum(counts, axis=-1) - counts
    return np.clip(np.asarray(room)[..., None] - before, 0, counts)


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
        """Return counts @ weights exactly as int64 (see `exact_weight_sums`)."""
        return exact_weight_sums(counts, self.weights).astype(np.int64)

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

        Events of a step arrive in ascending axon order (as `events` would take them). Equal to
        calling `events` and `tick` per row, counters included.
        """
        counts = self._check_raster(raster, 2)
        spikes, state, dropped = self._simulate(counts[None])
        self.v, self.i, self.ref = (x[0].astype(np.int64) for x in state)
        self.dropped_overflow = min(self.dropped_overflow + int(dropped[0]), COUNTER_MAX)
        self.acc = np.zeros_like(self.acc)
        self.events_this_step = 0
        self.step += len(counts)
        return spikes[0]

    def run_batch(self, rasters) -> np.ndarray:
        """Run B independent samples, each from this core's present state; return B x T x N bool.

        `rasters` is B x T x A event counts. Sample b's spikes equal those `run(rasters[b])` would
        give on a copy of this core; this core's own state and counters do not change, and
        `batch_dropped` (B,) holds the events each sample lost to `max_events_per_step`.
        """
        if type(self)._accepted is not CoreModel._accepted:
            raise ValueError("a batched run has no plasticity: use run() per sample")
        spikes, _, self.batch_dropped = self._simulate(self._check_raster(rasters, 3))
        return spikes

    def _check_raster(self, raster, ndim: int) -> np.ndarray:
        raster = np.asarray(raster)
        if raster.ndim != ndim or raster.shape[-1] != self.cfg.n_axons:
            lead = "T" if ndim == 2 else "B, T"
            raise ValueError(f"raster must have shape ({lead}, {self.cfg.n_axons}), not "
                             f"{raster.shape}")
        if not np.issubdtype(raster.dtype, np.integer) and raster.dtype != bool:
            raise ValueError(f"raster must hold integer event counts, not {raster.dtype}")
        counts = np.asarray(raster, dtype=np.int64)   # no copy when it is int64 already
        if counts.size and raster.dtype.kind == "i" and counts.min() < 0:
            raise ValueError("raster event counts must be >= 0")
        return counts

    #: Steps x samples x neurons simulated per chunk: bounds the input sums held in memory.
    CHUNK_ELEMENTS = 1 << 17

    def _simulate(self, counts):
        """Run B x T x A counts from the present state; return spikes B x T x N, the final
        (v, i, ref) as B x N arrays, and the events each sample dropped."""
        batch, steps, _ = counts.shape
        totals = counts.sum(axis=-1)
        room = np.full((batch, steps), self.cfg.max_events_per_step, dtype=np.int64)
        if steps:
            room[:, 0] -= self.events_this_step
        dropped = np.zeros(batch, dtype=np.int64)
        if (totals > room).any():
            accepted = accepted_counts(counts, room)
            dropped = (counts - accepted).sum(axis=(1, 2))
            counts, totals = accepted, accepted.sum(axis=-1)
        sums = WeightSums(self.weights)
        most = int(totals.max(initial=0))
        # Packing pays for its weight preparation (k passes over A x N) only over many rows.
        pack = batch * steps >= 2 * self.cfg.n_axons
        cast = sums.plan(most, pack)[0]
        lif = BatchLIF(self.cfg, self.params, batch, (self.v, self.i, self.ref))
        spikes = np.empty((steps, batch, self.cfg.n_neurons), dtype=bool)
        chunk = max(1, self.CHUNK_ELEMENTS // (batch * self.cfg.n_neurons))
        for start in range(0, steps, chunk):
            block = np.ascontiguousarray(counts[:, start:start + chunk].transpose(1, 0, 2),
                                         dtype=cast)
            # One 2-D product (a 3-D `@` would run one small product per step).
            acc = sums(block.reshape(-1, self.cfg.n_axons), most, pack=pack).reshape(
                len(block), batch, self.cfg.n_neurons)
            events = float(totals[:, start:start + chunk].max(initial=0))
            bound, span = events * sums.largest, [events * w for w in sums.span]
            if start == 0 and self.acc.any():
                acc = acc.astype(np.float64)
                acc[0] += self.acc
                bound += float(np.abs(self.acc).max())
                span = [span[0] + min(float(self.acc.min()), 0.0),
                        span[1] + max(float(self.acc.max()), 0.0)]
            spikes[start:start + chunk] = lif.run(acc, bound, span)
        return spikes.transpose(1, 0, 2), (lif.v, lif.i, lif.ref), dropped
