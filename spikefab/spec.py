"""The numeric specification shared by the golden model (`spikefab.sim`) and the gateware
(`spikefab.hw`).

Everything that both sides must agree on bit for bit lives here: the core's parameters and their
allowed ranges, the derived widths, the field order of the packed parameter and state words, and
the conversions from a user's floating-point neuron description to integers. `docs/numerics.md`
is the prose version of this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

__all__ = [
    "CoreConfig", "ResetMode", "NeuronParams", "Field",
    "param_fields", "state_fields", "integer_array", "pack_fields", "unpack_fields",
    "pack_weight_word", "unpack_weight_word", "decay_from_float", "decay_from_tau",
    "saturate", "mul_decay",
]


class ResetMode(IntEnum):
    """What happens to the membrane when a neuron spikes."""
    ZERO = 0      #: V becomes 0
    SUBTRACT = 1  #: V becomes V - threshold


def _check_range(name: str, value, lo: int, hi: int):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")


def integer_array(name: str, value) -> np.ndarray:
    """Return `value` as an int64 array; raise `ValueError` if any element is not a whole number.

    Whole-valued floats (3.0) are accepted; 2.5, NaN or a string are not: a parameter is never
    truncated into a different value.
    """
    try:
        array = np.asarray(value)
        if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer or an array of integers, not {value!r}") \
            from None
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            bad = array[~whole].flat[0]
            raise ValueError(f"{name} must be whole numbers, not {bad!r} (round it yourself, "
                             f"the core takes integers)")
    return array.astype(np.int64)


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class CoreConfig:
    """Elaboration-time parameters of one LIF core; validated on construction.

    Every width is in bits. Signed quantities are two's complement.
    """
    n_neurons: int = 256          #: N, neurons time-multiplexed on the core (1..4096)
    n_axons: int = 256            #: A, input axons (1..4096)
    weights_per_word: int = 2     #: K, weights per synapse-memory word; divides N (1..64)
    weight_width: int = 8         #: signed weight width (2..16)
    current_width: int = 16       #: signed synaptic current I width (4..32)
    voltage_width: int = 16       #: signed membrane V width (4..32)
    decay_width: int = 12         #: fraction bits F of the decays alpha, beta (1..16)
    refractory_width: int = 4     #: width of the refractory period / counter (1..8)
    max_events_per_step: int = 65535  #: input events one core accepts per step (1..2**20)
    step_width: int = 16          #: width of the step number carried by output spikes (8..32)

    def __post_init__(self):
        _check_range("n_neurons", self.n_neurons, 1, 4096)
        _check_range("n_axons", self.n_axons, 1, 4096)
        _check_range("weights_per_word", self.weights_per_word, 1, 64)
        if self.n_neurons % self.weights_per_word:
            raise ValueError(f"weights_per_word ({self.weights_per_word}) must divide "
                             f"n_neurons ({self.n_neurons})")
        _check_range("weight_width", self.weight_width, 2, 16)
        _check_range("current_width", self.current_width, 4, 32)
        _check_range("voltage_width", self.voltage_width, 4, 32)
        _check_range("decay_width", self.decay_width, 1, 16)
        _check_range("refractory_width", self.refractory_width, 1, 8)
        _check_range("max_events_per_step", self.max_events_per_step, 1, 2**20)
        _check_range("step_width", self.step_width, 8, 32)

    # Derived quantities -------------------------------------------------------------------------

    @property
    def words_per_axon(self) -> int:
        """Synapse-memory words per axon row: N / K. An input event costs this many cycles."""
        return self.n_neurons // self.weights_per_word

    @property
    def synapse_depth(self) -> int:
        """Synapse-memory depth in words: A * N / K."""
        return self.n_axons * self.words_per_axon

    @property
    def accumulator_width(self) -> int:
        """Width of the per-neuron input accumulator, wide enough that it can never overflow.

        The accumulator sums at most `max_events_per_step` weights of magnitude at most
        2**(weight_width-1), so weight_width + ceil(log2(max_events_per_step)) bits hold any sum
        exactly. Exactness makes the step's input independent of event order.
        """
        return self.weight_width + max(1, _ceil_log2(self.max_events_per_step))

    @property
    def decay_one(self) -> int:
        """The integer that means a decay factor of exactly 1.0 (2**F)."""
        return 1 << self.decay_width

    @property
    def neuron_id_width(self) -> int:
        return max(1, _ceil_log2(self.n_neurons))

    def range_of(self, width: int, signed: bool) -> tuple[int, int]:
        return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)

    @property
    def weight_range(self):
        return self.range_of(self.weight_width, True)

    @property
    def current_range(self):
        return self.range_of(self.current_width, True)

    @property
    def voltage_range(self):
        return self.range_of(self.voltage_width, True)

    def replace(self, **changes) -> "CoreConfig":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return CoreConfig(**values)


# Packed words -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a packed word; fields are laid out LSB first in list order."""
    name: str
    width: int
    signed: bool


def param_fields(cfg: CoreConfig) -> list[Field]:
    """Return the layout of a neuron's parameter word (shared by config port, model and host)."""
    return [
        Field("alpha", cfg.decay_width + 1, False),      # current decay, 0..2**F
        Field("beta", cfg.decay_width + 1, False),       # membrane decay, 0..2**F
        Field("threshold", cfg.voltage_width - 1, False),  # 0..Vmax
        Field("bias", cfg.current_width, True),          # added to I every step
        Field("refractory", cfg.refractory_width, False),  # steps held after a spike
        Field("reset", 1, False),                        # ResetMode
    ]


def state_fields(cfg: CoreConfig) -> list[Field]:
    """Return the layout of a neuron's state word (readable and writable by the host)."""
    return [
        Field("v", cfg.voltage_width, True),
        Field("i", cfg.current_width, True),
        Field("ref", cfg.refractory_width, False),  # refractory steps left
    ]


def word_width(layout: list[Field]) -> int:
    return sum(f.width for f in layout)


def pack_fields(layout: list[Field], values: dict) -> int:
    """Pack integer field values into one word; raise `ValueError` for a value out of range."""
    word, shift = 0, 0
    for f in layout:
        value = int(integer_array(f"field {f.name}", values[f.name]))
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed \
            else (0, (1 << f.width) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"field {f.name} must be in {lo}..{hi}, not {value}")
        word |= (value & ((1 << f.width) - 1)) << shift
        shift += f.width
    return word


def unpack_fields(layout: list[Field], word: int) -> dict:
    """Unpack a word made by `pack_fields` into a dict of Python ints."""
    values, shift = {}, 0
    for f in layout:
        raw = (word >> shift) & ((1 << f.width) - 1)
        if f.signed and raw >> (f.width - 1):
            raw -= 1 << f.width
        values[f.name] = raw
        shift += f.width
    return values


def pack_weight_word(cfg: CoreConfig, weights) -> int:
    """Pack K signed weights (neuron j*K + k at bits [k*W, (k+1)*W)) into one word."""
    lo, hi = cfg.weight_range
    word = 0
    for k, w in enumerate(weights):
        w = int(integer_array("weight", w))
        if not lo <= w <= hi:
            raise ValueError(f"weight must be in {lo}..{hi}, not {w}")
        word |= (w & ((1 << cfg.weight_width) - 1)) << (k * cfg.weight_width)
    return word


def unpack_weight_word(cfg: CoreConfig, word: int) -> list[int]:
    layout = [Field(f"w{k}", cfg.weight_width, True) for k in range(cfg.weights_per_word)]
    return list(unpack_fields(layout, word).values())


# Neuron parameters ------------------------------------------------------------------------------

@dataclass
class NeuronParams:
    """Per-neuron integer parameters, each an int64 array of length N (see `docs/numerics.md`).

    alpha, beta: decay factors as integers over 2**F (0 = no memory, 2**F = no decay);
    threshold: 0..Vmax, a neuron spikes when V > threshold; bias: added to I every step;
    refractory: steps during which V is held and no spike can happen; reset: `ResetMode`.
    """
    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    refractory: np.ndarray
    reset: np.ndarray

    @classmethod
    def zeros(cls, cfg: CoreConfig) -> "NeuronParams":
        """Return the parameters a core holds after reset: every field 0."""
        return cls(**{f.name: np.zeros(cfg.n_neurons, dtype=np.int64) for f in param_fields(cfg)})

    @classmethod
    def uniform(cls, cfg: CoreConfig, *, alpha=0, beta=None, threshold=None, bias=0,
                refractory=0, reset=ResetMode.ZERO) -> "NeuronParams":
        """Return parameters that are the same for every neuron, then validate them.

        Defaults: beta = 15/16, threshold = 64 maximal weights, or half of Vmax when that is
        smaller. A threshold above Vmax raises `ValueError` (V saturates at Vmax, so the neuron
        could never fire); threshold = Vmax is allowed and means a neuron that never fires.
        """
        n = cfg.n_neurons
        beta = cfg.decay_one * 15 // 16 if beta is None else beta
        if threshold is None:
            threshold = min(64 << (cfg.weight_width - 1), cfg.voltage_range[1] // 2)
        values = dict(alpha=alpha, beta=beta, threshold=threshold, bias=bias,
                      refractory=refractory, reset=reset)
        params = cls(**{k: np.full(n, int(integer_array(k, v)), dtype=np.int64)
                        for k, v in values.items()})
        params.validate(cfg)
        return params

    def validate(self, cfg: CoreConfig, n_neurons: int | None = None):
        """Raise `ValueError` naming the field and its allowed range if anything is out of range.

        Every field must hold `n_neurons` values (default: the core's N).
        """
        n = cfg.n_neurons if n_neurons is None else n_neurons
        for f in param_fields(cfg):
            array = integer_array(f.name, getattr(self, f.name))
            if array.shape != (n,):
                raise ValueError(f"{f.name} must have shape ({n},), not {array.shape}")
            lo, hi = cfg.range_of(f.width, f.signed)
            if f.name in ("alpha", "beta"):
                hi = cfg.decay_one
            if array.size and (array.min() < lo or array.max() > hi):
                raise ValueError(f"{f.name} must be in {lo}..{hi}; got values "
                                 f"{array.min()}..{array.max()}"
                                 + _threshold_hint(cfg, f.name, array.max()))

    def word(self, cfg: CoreConfig, neuron: int) -> int:
        """Return neuron `neuron`'s packed parameter word."""
        return pack_fields(param_fields(cfg), {f.name: getattr(self, f.name)[neuron]
                                               for f in param_fields(cfg)})


def _threshold_hint(cfg: CoreConfig, name: str, largest) -> str:
    if name != "threshold" or largest <= cfg.voltage_range[1]:
        return ""
    return (f" (V saturates at {cfg.voltage_range[1]} with voltage_width={cfg.voltage_width}, "
            f"so this neuron could never fire: scale weights and threshold down, or widen V)")


# Float conversions ------------------------------------------------------------------------------

def decay_from_float(cfg: CoreConfig, factor: float) -> int:
    """Convert a decay factor in [0, 1] to the integer round(factor * 2**F).

    A leaky factor (below 1) that would round to exactly 2**F, i.e. no decay at all, raises
    `ValueError`: rounding must not turn a leaky neuron into an integrator.
    """
    if not 0.0 <= factor <= 1.0:
        raise ValueError(f"decay factor must be in 0..1, not {factor!r}")
    value = int(round(factor * cfg.decay_one))
    if factor < 1.0 and value == cfg.decay_one:
        raise ValueError(f"decay factor {factor!r} rounds to 1 (no decay) with decay_width="
                         f"{cfg.decay_width}; factors above {1 - 0.5 / cfg.decay_one} need more "
                         f"fraction bits (tau above ~{2 * cfg.decay_one} steps)")
    return value


def decay_from_tau(cfg: CoreConfig, tau: float, dt: float) -> int:
    """Convert a time constant and a step length (same units) to the decay exp(-dt/tau)."""
    if tau <= 0 or dt <= 0:
        raise ValueError(f"tau and dt must be positive, not tau={tau!r}, dt={dt!r}")
    return decay_from_float(cfg, math.exp(-dt / tau))


# Arithmetic primitives (NumPy, int64) ------------------------------------------------------------

def saturate(x, width: int):
    """Clamp to the signed range of `width` bits."""
    return np.clip(x, -(1 << (width - 1)), (1 << (width - 1)) - 1)


def mul_decay(x, factor, frac_bits: int):
    """Return x * factor / 2**frac_bits rounded toward zero (the spec's decay product)."""
    product = np.asarray(x, dtype=np.int64) * np.asarray(factor, dtype=np.int64)
    magnitude = np.abs(product) >> frac_bits
    return np.where(product < 0, -magnitude, magnitude)


#: Width of every status counter; counters saturate at their maximum instead of wrapping.
COUNTER_WIDTH = 32
COUNTER_MAX = (1 << COUNTER_WIDTH) - 1

# Fixed widths of the chip's internal paths (the gateware's `spikefab.hw.layouts` uses them).
#: A source id: neuron n of core c or a host input (`ChipConfig.n_sources` must fit).
SOURCE_WIDTH = 16
#: An axon id in a core's command stream and in a route destination: wider than any core's
#: axon count, so that an out-of-range id arrives intact and is counted instead of wrapping.
AXON_ID_WIDTH = 16
#: The core field of a route destination: a core index or `protocol.HOST_CORE` (0xFF).
CORE_ID_WIDTH = 8
#: A route-index entry's start and count (`ChipConfig.route_entries` must fit).
ROUTE_INDEX_WIDTH = 16
#: The step stamp of a spike held for the host.
HOST_STEP_WIDTH = 32
#: A core's config-port word address (covers 4096 axons x 4096 words).
CONFIG_ADDR_WIDTH = 24


@dataclass(frozen=True)
class ChipConfig:
    """Elaboration-time parameters of the chip: C identical cores, the router, the host link.

    Source ids: neuron n of core c is `c * N + n`; host input i is `C * N + i`. Every source has a
    route-index entry (start, count) into a shared list of `route_entries` destinations.
    """
    core: CoreConfig = CoreConfig()
    n_cores: int = 4                 #: C (1..16)
    n_inputs: int = 256              #: host input sources (0..4096)
    route_entries: int = 4096        #: destinations in the shared route list (1..65535)
    max_host_events: int = 4096      #: routed host-input events accepted per step (1..65535)
    host_buffer: int = 4096          #: output spikes the chip holds for the host (1..65535)
    #: Cores built with the plasticity unit (`docs/plasticity.md`): True for every core, False
    #: for none, or the core indices; stored as the sorted tuple of indices.
    plastic: bool | tuple[int, ...] = ()

    def __post_init__(self):
        if not isinstance(self.core, CoreConfig):
            raise ValueError(f"core must be a CoreConfig, not {self.core!r}")
        self._normalise_plastic()
        _check_range("n_cores", self.n_cores, 1, 16)
        _check_range("n_inputs", self.n_inputs, 0, 4096)
        _check_range("route_entries", self.route_entries, 1, 65535)
        _check_range("max_host_events", self.max_host_events, 1, 65535)
        _check_range("host_buffer", self.host_buffer, 1, 65535)
        if self.n_sources > (1 << SOURCE_WIDTH) - 1:
            raise ValueError(f"n_cores * n_neurons + n_inputs must be at most "
                             f"{(1 << SOURCE_WIDTH) - 1} ({SOURCE_WIDTH}-bit source ids), "
                             f"not {self.n_sources}")
        # Each route entry delivers at most one event per step, and host inputs at most
        # max_host_events: if both fit a core's per-step cap, no core can ever drop an event for
        # overflow, so event order never matters and the golden model is exact.
        if self.route_entries + self.max_host_events > self.core.max_events_per_step:
            raise ValueError(
                f"route_entries + max_host_events ({self.route_entries + self.max_host_events})"
                f" must not exceed the core's max_events_per_step "
                f"({self.core.max_events_per_step})")

    def _normalise_plastic(self):
        plastic = self.plastic
        if plastic is True or plastic is False:
            plastic = tuple(range(self.n_cores)) if plastic else ()
        try:
            cores = tuple(sorted({int(integer_array("core", c)) for c in plastic}))
        except (TypeError, ValueError):
            raise ValueError(f"plastic must be True, False or core indices, not {plastic!r}") \
                from None
        if any(not 0 <= c < self.n_cores for c in cores):
            raise ValueError(f"plastic core indices must be in 0..{self.n_cores - 1}, "
                             f"not {plastic!r}")
        if cores:
            from .learning import plastic_config_error
            problem = plastic_config_error(self.core)
            if problem:
                raise ValueError(f"the cores cannot be plastic: {problem}")
        object.__setattr__(self, "plastic", cores)

    def is_plastic(self, core: int) -> bool:
        """Whether core `core` carries the plasticity unit."""
        return core in self.plastic

    @property
    def n_sources(self) -> int:
        return self.n_cores * self.core.n_neurons + self.n_inputs

    def input_source(self, index: int) -> int:
        return self.n_cores * self.core.n_neurons + index
