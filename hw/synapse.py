"""Synapse memory: A x N weights in words of K, behind one single-port interface.

The single port (one address for read and write) matches the iCE40UP5K's SPRAM. Two
implementations sit behind the same interface, chosen by `kind`:

* ``"memory"``: a behavioural `amaranth.lib.memory.Memory` (simulation, ECP5, any family);
* ``"spram"``: `SB_SPRAM256KA` primitives (iCE40UP5K), 16k words of 16 bits each, tiled in width
  and depth. Yosys never maps a `lib.memory` onto SPRAM (Amaranth always gives a memory initial
  contents, which SPRAM cannot have), so the primitives are instantiated directly.
* ``"auto"`` (default): ``"spram"`` when elaborated for an iCE40 UltraPlus platform (the
  iCEBreaker's UP5K), else ``"memory"``.

Both start all zero: SPRAM has no initial contents, so the SPRAM version writes zeros over every
word after reset and holds `ready` low meanwhile (16384 cycles, all SPRAMs in parallel). The
behavioural version is ready at once.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikefab.spec import CoreConfig

from .layouts import (
    synapse_address_width,
    synapse_port_signature,
    synapse_word_bits,
    synapse_word_width,
)
from .spram import (
    MEMORY_KINDS,
    SPRAM,
    SPRAM_AVAILABLE,
    SPRAM_DEPTH,
    resolve_memory_kind,
    spram_tiles,
)

__all__ = ["SynapseMemory", "synapse_word_bits", "synapse_address_width", "SYNAPSE_KINDS",
           "spram_count"]

SYNAPSE_KINDS = MEMORY_KINDS


def _synapse_depth(cfg: CoreConfig) -> int:
    return cfg.n_axons << synapse_word_bits(cfg)


def spram_count(cfg: CoreConfig) -> tuple[int, int]:
    """Return (banks in depth, SPRAMs per bank in width) that one core's synapse memory needs."""
    return spram_tiles(synapse_word_width(cfg), _synapse_depth(cfg))


class SynapseMemory(wiring.Component):
    """Single-port synapse memory; address = (axon << word_bits) | word.

    `port` (`layouts.synapse_port_signature`, flipped): a read issued with `r_en` in one cycle
    has its word on `r_data` in the next; `r_data` holds while neither `r_en` nor `w_en` is
    high. `w_en` writes `w_data`; do not read and write in the same cycle, and read again after a
    write before using `r_data` (SPRAM leaves it undefined). `ready` is low while the memory
    clears itself after reset; do not access it until then.
    """

    def __init__(self, cfg: CoreConfig, *, kind: str = "auto"):
        if kind not in SYNAPSE_KINDS:
            raise ValueError(f"synapse memory kind must be one of {SYNAPSE_KINDS}, not {kind!r}")
        self.cfg, self.kind = cfg, kind
        super().__init__({
            "port": In(synapse_port_signature(cfg)),
            "ready": Out(1),
        })

    def elaborate(self, platform):
        if resolve_memory_kind(self.kind, platform) == "spram":
            return self._elaborate_spram()
        m = Module()
        port = self.port
        depth = _synapse_depth(self.cfg)
        m.submodules.mem = mem = Memory(shape=unsigned(len(port.w_data)), depth=depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += [
            rd.addr.eq(port.addr), rd.en.eq(port.r_en), port.r_data.eq(rd.data),
            wr.addr.eq(port.addr), wr.en.eq(port.w_en), wr.data.eq(port.w_data),
            self.ready.eq(1),
        ]
        return m

    def _elaborate_spram(self):
        banks, lanes = spram_count(self.cfg)
        depth = _synapse_depth(self.cfg)
        port = self.port
        if banks * lanes > SPRAM_AVAILABLE:
            raise ValueError(
                f"the synapse memory needs {banks * lanes} SPRAMs ({depth} words of "
                f"{len(port.w_data)} bits), an iCE40UP5K has {SPRAM_AVAILABLE}")
        m = Module()
        m.submodules.ram = ram = SPRAM(len(port.w_data), depth)
        # Start-up clear: one word per cycle in every bank at once (SPRAM has no initial value).
        clearing = Signal(init=1)
        clear_addr = Signal(range(depth))
        last = min(SPRAM_DEPTH, depth) - 1
        m.d.comb += self.ready.eq(~clearing)
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr[:14] == last):
                m.d.sync += clearing.eq(0)
            m.d.comb += [ram.addr.eq(clear_addr), ram.en.eq(1), ram.w_en.eq(1),
                         ram.w_data.eq(0), ram.all_banks.eq(1)]
        with m.Else():
            m.d.comb += [ram.addr.eq(port.addr), ram.en.eq(port.r_en | port.w_en),
                         ram.w_en.eq(port.w_en), ram.w_data.eq(port.w_data)]
        m.d.comb += port.r_data.eq(ram.r_data)
        return m
