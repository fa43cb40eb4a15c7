"""Stream payloads and packed words of the core, built once from a `CoreConfig`.

The packed parameter and state words are generated from the same field lists
(`spikefab.spec.param_fields`, `state_fields`) that the golden model and the host use.
"""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum

from spikefab.spec import COUNTER_WIDTH, CoreConfig, Field, param_fields, state_fields

__all__ = [
    "CoreOp", "SpikeKind", "ConfigSpace", "AXON_WIDTH", "CONFIG_ADDR_WIDTH",
    "struct_of", "param_layout", "state_layout", "command_layout", "spike_layout",
    "config_request_layout", "config_response_layout", "config_data_width", "COUNTER_WIDTH",
    "pack", "unpack",
]

#: Width of the axon field of an input event: wider than any core's axon count, so that an
#: out-of-range id arrives intact and is counted instead of wrapping.
AXON_WIDTH = 16
#: Width of the config port's word address (covers 4096 axons x 4096 words).
CONFIG_ADDR_WIDTH = 24


class CoreOp(enum.Enum, shape=2):
    """What an entry of the core's command stream asks for."""
    EVENT = 0  #: add the weights of `axon` to this step's input
    TICK = 1   #: update every neuron once, emit the step's spikes, then advance the step
    CLEAR = 2  #: zero every neuron's state and accumulator, the step and the drop counters


class SpikeKind(enum.Enum, shape=1):
    SPIKE = 0     #: neuron `neuron` spiked in step `step`
    STEP_END = 1  #: every spike of step `step` has been emitted (neuron field is 0)


class ConfigSpace(enum.Enum, shape=2):
    """Address spaces of the config port; see `docs/numerics.md` for word layouts."""
    WEIGHTS = 0  #: address (axon << word_bits) | word, data K packed weights
    PARAMS = 1   #: address neuron, data the packed parameter word
    STATE = 2    #: address neuron, data the packed state word (V, I, refractory count)
    LEARN = 3    #: plastic cores only: address region << 20 | index (see docs/plasticity.md)


def struct_of(fields: list[Field]) -> data.StructLayout:
    return data.StructLayout({f.name: signed(f.width) if f.signed else unsigned(f.width)
                              for f in fields})


def param_layout(cfg: CoreConfig) -> data.StructLayout:
    return struct_of(param_fields(cfg))


def state_layout(cfg: CoreConfig) -> data.StructLayout:
    return struct_of(state_fields(cfg))


def command_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({"op": CoreOp, "axon": unsigned(AXON_WIDTH)})


def spike_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "neuron": unsigned(cfg.neuron_id_width),
        "step": unsigned(cfg.step_width),
        "kind": SpikeKind,
    })


def config_data_width(cfg: CoreConfig) -> int:
    return max(cfg.weights_per_word * cfg.weight_width,
               param_layout(cfg).size, state_layout(cfg).size)


def config_request_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "write": 1,
        "space": ConfigSpace,
        "addr": unsigned(CONFIG_ADDR_WIDTH),
        "data": unsigned(config_data_width(cfg)),
    })


def config_response_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "data": unsigned(config_data_width(cfg)),
        "error": 1,  #: address out of range or parameter value not allowed; nothing was written
    })


def pack(layout: data.StructLayout, **values) -> int:
    """Pack Python ints (or enum members) into the integer a port of `layout` carries."""
    word = 0
    for name, field in layout:
        shape = Shape.cast(field.shape)
        value = int(getattr(values.get(name, 0), "value", values.get(name, 0)))
        word |= (value & ((1 << shape.width) - 1)) << field.offset
    return word


def unpack(layout: data.StructLayout, word: int) -> dict:
    """Unpack an integer read from a port of `layout` into a dict of Python ints."""
    values = {}
    for name, field in layout:
        shape = Shape.cast(field.shape)
        raw = (word >> field.offset) & ((1 << shape.width) - 1)
        if shape.signed and raw >> (shape.width - 1):
            raw -= 1 << shape.width
        values[name] = raw
    return values
