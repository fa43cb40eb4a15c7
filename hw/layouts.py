"""Stream payloads, packed words and internal port signatures of the chip, built once.

Every layout and signature that more than one block uses is declared here, from a `CoreConfig`
or `ChipConfig` and the fixed widths of `spikefab.spec` (and `spikefab.learning` for the
plasticity unit); the blocks only import them. The packed parameter and state words are
generated from the same field lists (`spikefab.spec.param_fields`, `state_fields`) that the
golden model and the host use.

Port signatures are written from the initiator's side (the block that drives the address or the
`valid`): the target takes them `In(...)`, i.e. flipped.
"""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P
from spikefab.learning import NEURON_FACTOR_WIDTH
from spikefab.spec import (
    AXON_ID_WIDTH,
    CONFIG_ADDR_WIDTH,
    CORE_ID_WIDTH,
    COUNTER_WIDTH,
    HOST_STEP_WIDTH,
    ROUTE_INDEX_WIDTH,
    SOURCE_WIDTH,
    CoreConfig,
    Field,
    param_fields,
    state_fields,
)

__all__ = [
    "CoreOp", "SpikeKind", "SynapseOwner", "ConfigSpace",
    "AXON_WIDTH", "CONFIG_ADDR_WIDTH", "SOURCE_WIDTH", "COUNTER_WIDTH", "FRAME_BUFFER_BYTES",
    "struct_of", "param_layout", "state_layout", "command_layout", "spike_layout",
    "config_request_layout", "config_response_layout", "config_data_width",
    "synapse_word_bits", "synapse_address_width", "synapse_word_width", "synapse_port_signature",
    "plasticity_hooks_signature", "factor_layout",
    "core_event_layout", "route_index_layout", "route_dest_layout", "host_event_layout",
    "frame_layout", "pack", "unpack",
]

#: Width of the axon field of an input event (`spikefab.spec.AXON_ID_WIDTH`).
AXON_WIDTH = AXON_ID_WIDTH
#: Bytes of a frame buffer: the largest payload and its CRC.
FRAME_BUFFER_BYTES = P.MAX_PAYLOAD + 2


class CoreOp(enum.Enum, shape=2):
    """What an entry of the core's command stream asks for."""
    EVENT = 0  #: add the weights of `axon` to this step's input
    TICK = 1   #: update every neuron once, emit the step's spikes, then advance the step
    CLEAR = 2  #: zero every neuron's state and accumulator, the step and the drop counters


class SynapseOwner(enum.Enum, shape=1):
    """Which block drives a core's synapse port (`synapse_port_signature`)."""
    CONTROLLER = 0  #: the core's controller: events, config requests (the default)
    PLASTICITY = 1  #: the plasticity unit, during a learning step


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


def synapse_word_bits(cfg: CoreConfig) -> int:
    """Bits of the word index inside an axon's row: ceil(log2(N / K))."""
    return (cfg.words_per_axon - 1).bit_length()


def synapse_address_width(cfg: CoreConfig) -> int:
    """Width of a synapse-memory address, (axon << word_bits) | word."""
    return max(1, (cfg.n_axons - 1).bit_length() + synapse_word_bits(cfg))


def synapse_word_width(cfg: CoreConfig) -> int:
    """Width of a synapse-memory word: K packed weights."""
    return cfg.weights_per_word * cfg.weight_width


def synapse_port_signature(cfg: CoreConfig) -> wiring.Signature:
    """The synapse memory's single port, from the side that drives it (the core's controller, or
    the plasticity unit while it owns the port; the memory takes it flipped).

    A read issued with `r_en` in one cycle has its word on `r_data` in the next; `r_data` holds
    while neither `r_en` nor `w_en` is high. `w_en` writes `w_data` to `addr`; never both at once.
    """
    width = synapse_word_width(cfg)
    return wiring.Signature({
        "addr": Out(synapse_address_width(cfg)), "r_en": Out(1), "w_en": Out(1),
        "w_data": Out(width), "r_data": In(width),
    })


def plasticity_hooks_signature(cfg: CoreConfig) -> wiring.Signature:
    """The core's hooks into its plasticity unit, from the core's side (the unit takes them
    flipped). Each hook is its own sub-signature:

    - `step`: `run` (the unit owns the synapse port and runs the learning step; held until
      `done`), `done`, `enabled` (the unit's ENABLE register: whether a tick has a learning step);
    - `event`: `valid` in the cycle an input event for `axon` is accepted;
    - `tick`: `valid` for one neuron per cycle at the end of the tick's update stage: `neuron`,
      its `spike`, membrane sum `v_sum` (before the spike test), `threshold`, `refractory`;
    - `config`: a LEARN-space request in the cycle it is accepted (`valid`, `write`, `addr`,
      `data`); `ok` in that cycle, `rdata` one cycle later;
    - `clear`: `valid` and `addr` for each address of the core's CLEAR sweep.
    """
    n, a = cfg.n_neurons, cfg.n_axons
    return wiring.Signature({
        "step": Out(wiring.Signature({"run": Out(1), "done": In(1), "enabled": In(1)})),
        "event": Out(wiring.Signature({"valid": Out(1), "axon": Out(range(a))})),
        "tick": Out(wiring.Signature({
            "valid": Out(1), "neuron": Out(range(n)), "spike": Out(1),
            "v_sum": Out(signed(cfg.voltage_width)), "threshold": Out(cfg.voltage_width - 1),
            "refractory": Out(1),
        })),
        "config": Out(wiring.Signature({
            "valid": Out(1), "write": Out(1), "addr": Out(CONFIG_ADDR_WIDTH),
            "data": Out(config_data_width(cfg)), "ok": In(1),
            "rdata": In(config_data_width(cfg)),
        })),
        "clear": Out(wiring.Signature({"valid": Out(1), "addr": Out(range(max(n, a)))})),
    })


def factor_layout() -> data.StructLayout:
    """A neuron's learning factors P and D (`docs/plasticity.md`)."""
    return data.StructLayout({"p": signed(NEURON_FACTOR_WIDTH), "d": signed(NEURON_FACTOR_WIDTH)})


def core_event_layout() -> data.StructLayout:
    """A routed event for a core: the target core and its axon."""
    return data.StructLayout({"core": unsigned(CORE_ID_WIDTH), "axon": unsigned(AXON_ID_WIDTH)})


def route_index_layout() -> data.StructLayout:
    """A source's route-index entry: its destinations start .. start + count - 1."""
    return data.StructLayout({"start": unsigned(ROUTE_INDEX_WIDTH),
                              "count": unsigned(ROUTE_INDEX_WIDTH)})


def route_dest_layout() -> data.StructLayout:
    """A route destination: core (or `protocol.HOST_CORE`) and axon."""
    return core_event_layout()


def host_event_layout() -> data.StructLayout:
    """A spike held for the host: the step it happened in (low bits) and its source id."""
    return data.StructLayout({"step": unsigned(HOST_STEP_WIDTH),
                              "source": unsigned(SOURCE_WIDTH)})


def frame_layout() -> data.StructLayout:
    """A received frame: its `protocol.Status` and payload length."""
    return data.StructLayout({"status": unsigned(4), "length": range(FRAME_BUFFER_BYTES + 1)})


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
