"""Synapse memory: A x N weights in words of K, behind one single-port interface.

The single port (one address for read and write) matches the iCE40UP5K's SPRAM. Two
implementations sit behind the same interface, chosen by `kind`:

* ``"memory"``: a behavioural `amaranth.lib.memory.Memory` (simulation, ECP5, any family);
* ``"spram"``: `SB_SPRAM256KA` primitives (iCE40UP5K), 16k words of 16 bits each, tiled in width
  and depth. Yosys never maps a `lib.memory` onto SPRAM (Amaranth always gives a memory initial
  contents, which SPRAM cannot have), so the primitives are instantiated directly.
* ``"auto"`` (default): ``"spram"`` when elaborated for an iCE40 platform, else ``"memory"``.

Both start all zero: SPRAM has no initial contents, so the SPRAM version writes zeros over every
word after reset and holds `ready` low meanwhile (16384 cycles, all SPRAMs in parallel). The
behavioural version is ready at once.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.spec import CoreConfig

__all__ = ["SynapseMemory", "synapse_word_bits", "synapse_address_width", "SYNAPSE_KINDS",
           "SPRAM_DEPTH", "SPRAM_WIDTH", "spram_count"]

SYNAPSE_KINDS = ("auto", "memory", "spram")
SPRAM_DEPTH, SPRAM_WIDTH = 16384, 16   #: one SB_SPRAM256KA: 16k words of 16 bits
#: SPRAMs on the largest iCE40 that has them (UP5K).
SPRAM_AVAILABLE = 4


def synapse_word_bits(cfg: CoreConfig) -> int:
    """Bits of the word index inside an axon's row: ceil(log2(N / K))."""
    return (cfg.words_per_axon - 1).bit_length()


def synapse_address_width(cfg: CoreConfig) -> int:
    return max(1, (cfg.n_axons - 1).bit_length() + synapse_word_bits(cfg))


def _synapse_depth(cfg: CoreConfig) -> int:
    return cfg.n_axons << synapse_word_bits(cfg)


def spram_count(cfg: CoreConfig) -> tuple[int, int]:
    """Return (banks in depth, SPRAMs per bank in width) that one core's synapse memory needs."""
    width = cfg.weights_per_word * cfg.weight_width
    return (-(-_synapse_depth(cfg) // SPRAM_DEPTH), -(-width // SPRAM_WIDTH))


def _platform_is_ice40(platform) -> bool:
    return getattr(platform, "family", None) == "ice40"


class SynapseMemory(wiring.Component):
    """Single-port synapse memory; address = (axon << word_bits) | word.

    A read issued with `r_en` in one cycle has its word on `r_data` in the next; `r_data` holds
    while neither `r_en` nor `w_en` is high. `w_en` writes `w_data`; do not read and write in the
    same cycle, and read again after a write before using `r_data` (SPRAM leaves it undefined).
    `ready` is low while the memory clears itself after reset; do not access it until then.
    """

    def __init__(self, cfg: CoreConfig, *, kind: str = "auto"):
        if kind not in SYNAPSE_KINDS:
            raise ValueError(f"synapse memory kind must be one of {SYNAPSE_KINDS}, not {kind!r}")
        self.cfg, self.kind = cfg, kind
        width = cfg.weights_per_word * cfg.weight_width
        super().__init__({
            "addr": In(synapse_address_width(cfg)),
            "r_en": In(1),
            "r_data": Out(width),
            "w_en": In(1),
            "w_data": In(width),
            "ready": Out(1),
        })

    def resolved_kind(self, platform) -> str:
        if self.kind != "auto":
            return self.kind
        return "spram" if _platform_is_ice40(platform) else "memory"

    def elaborate(self, platform):
        if self.resolved_kind(platform) == "spram":
            return self._elaborate_spram()
        m = Module()
        depth = _synapse_depth(self.cfg)
        m.submodules.mem = mem = Memory(shape=unsigned(len(self.w_data)), depth=depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += [
            rd.addr.eq(self.addr), rd.en.eq(self.r_en), self.r_data.eq(rd.data),
            wr.addr.eq(self.addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data),
            self.ready.eq(1),
        ]
        return m

    def _elaborate_spram(self):
        banks, lanes = spram_count(self.cfg)
        if banks * lanes > SPRAM_AVAILABLE:
            raise ValueError(
                f"the synapse memory needs {banks * lanes} SPRAMs "
                f"({_synapse_depth(self.cfg)} words of {len(self.w_data)} bits), an iCE40UP5K "
                f"has {SPRAM_AVAILABLE}")
        m = Module()
        low_bits = min(14, len(self.addr))
        bank_sel = self.addr[low_bits:] if banks > 1 else Const(0, 1)
        read_bank = Signal(range(max(2, banks)))      # bank of the last read, picks r_data

        # Start-up clear: one address per cycle, every SPRAM at once.
        clearing = Signal(init=1)
        clear_addr = Signal(14)
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr == min(SPRAM_DEPTH, _synapse_depth(self.cfg)) - 1):
                m.d.sync += clearing.eq(0)
        m.d.comb += self.ready.eq(~clearing)
        with m.If(self.r_en):
            m.d.sync += read_bank.eq(bank_sel)

        w_data = Signal(lanes * SPRAM_WIDTH)
        m.d.comb += w_data.eq(self.w_data)
        address = Mux(clearing, clear_addr, self.addr[:low_bits])
        bank_outputs = []
        for bank in range(banks):
            selected = clearing | (bank_sel == bank)
            data_out = Signal(lanes * SPRAM_WIDTH, name=f"bank{bank}_data")
            bank_outputs.append(data_out)
            for lane in range(lanes):
                m.submodules[f"spram{bank}_{lane}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=address,
                    i_DATAIN=Mux(clearing, 0, w_data.word_select(lane, SPRAM_WIDTH)),
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=clearing | self.w_en,
                    i_CHIPSELECT=selected & (clearing | self.r_en | self.w_en),
                    i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),
                    o_DATAOUT=data_out.word_select(lane, SPRAM_WIDTH))
        with m.Switch(read_bank):
            for bank, data_out in enumerate(bank_outputs):
                with m.Case(bank):
                    m.d.comb += self.r_data.eq(data_out)
        return m
