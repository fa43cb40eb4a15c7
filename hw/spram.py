"""A single-port RAM made of the iCE40UP5K's SPRAM blocks (`SB_SPRAM256KA`).

Yosys never maps an `amaranth.lib.memory.Memory` onto SPRAM (Amaranth always gives a memory
initial contents, which SPRAM cannot have), so memories that should live there instantiate the
primitive through this component. Simulation uses Yosys's own model of the primitive
(`spikefab.verify.rtlsim.vendor_models`).
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SPRAM", "spram_tiles", "SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAM_AVAILABLE", "MEMORY_KINDS",
           "resolve_memory_kind"]

SPRAM_DEPTH, SPRAM_WIDTH = 16384, 16   #: one SB_SPRAM256KA: 16k words of 16 bits
SPRAM_AVAILABLE = 4                    #: SPRAMs of an iCE40UP5K
#: Implementations of single-port memories: "memory" (behavioural `lib.memory`), "spram", or
#: "auto" ("spram" on an iCE40 UltraPlus platform, else "memory").
MEMORY_KINDS = ("auto", "memory", "spram")


def resolve_memory_kind(kind: str, platform) -> str:
    """Return "memory" or "spram" for `kind` elaborated on `platform`."""
    if kind not in MEMORY_KINDS:
        raise ValueError(f"memory kind must be one of {MEMORY_KINDS}, not {kind!r}")
    if kind != "auto":
        return kind
    # Only the iCE40 UltraPlus devices (iCE40UPxK) have SB_SPRAM256KA.
    return "spram" if str(getattr(platform, "device", "")).startswith("iCE40UP") else "memory"


def spram_tiles(width: int, depth: int) -> tuple[int, int]:
    """Return (banks in depth, SPRAMs per bank in width) for `depth` words of `width` bits."""
    return (-(-depth // SPRAM_DEPTH), -(-width // SPRAM_WIDTH))


class SPRAM(wiring.Component):
    """`depth` words of `width` bits in SPRAM tiles (16k x 16 each), one port.

    In a cycle with `en` high the word at `addr` is written with `w_data` if `w_en` is high,
    else read: it appears on `r_data` in the next cycle. `r_data` holds while `en` is low and is
    undefined after a write. `all_banks` makes a write go to `addr` modulo 16k in every bank at
    once (to clear the memory in 16k cycles). `tiles` = (banks in depth, SPRAMs per bank).
    """

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        self.tiles = spram_tiles(width, depth)
        super().__init__({
            "addr": In(range(depth)),
            "en": In(1),
            "w_en": In(1),
            "w_data": In(width),
            "all_banks": In(1),
            "r_data": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        banks, lanes = self.tiles
        low_bits = min(14, len(self.addr))
        bank_sel = self.addr[low_bits:] if banks > 1 else Const(0, 1)
        read_bank = Signal(range(max(2, banks)))      # bank of the last read picks r_data
        with m.If(self.en & ~self.w_en):
            m.d.sync += read_bank.eq(bank_sel)
        w_data = Signal(lanes * SPRAM_WIDTH)
        address = Signal(14)                          # the primitive's full address width
        m.d.comb += [w_data.eq(self.w_data), address.eq(self.addr[:low_bits])]
        outputs = []
        for bank in range(banks):
            data_out = Signal(lanes * SPRAM_WIDTH, name=f"bank{bank}_data")
            outputs.append(data_out)
            for lane in range(lanes):
                m.submodules[f"spram{bank}_{lane}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=address,
                    i_DATAIN=w_data.word_select(lane, SPRAM_WIDTH),
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=self.w_en,
                    i_CHIPSELECT=self.en & ((bank_sel == bank) | self.all_banks),
                    i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),
                    o_DATAOUT=data_out.word_select(lane, SPRAM_WIDTH))
        with m.Switch(read_bank):
            for bank, data_out in enumerate(outputs):
                with m.Case(bank):
                    m.d.comb += self.r_data.eq(data_out)
        return m


class _Port:
    """Signals shaped like a `lib.memory` port (addr, data, en), driven by the user."""

    def __init__(self, name: str, width: int, depth: int):
        self.addr = Signal(range(depth), name=f"{name}_addr")
        self.data = Signal(width, name=f"{name}_data")
        self.en = Signal(name=f"{name}_en")


def buffer_ports(m: Module, name: str, *, kind: str, platform, width: int, depth: int):
    """Add a buffer memory to `m`; return its (write port, read port).

    With the "memory" kind these are a `lib.memory` write port and a (non-transparent) read
    port. With "spram" they are signals of the same names in front of one SPRAM port: a write
    takes the port in its cycle (the read data of that cycle's next cycle is then undefined), so
    use it only for buffers that are written and read in different phases.
    """
    from amaranth.hdl import Mux
    from amaranth.lib.memory import Memory
    if resolve_memory_kind(kind, platform) == "memory":
        m.submodules[name] = mem = Memory(shape=width, depth=depth, init=[])
        return mem.write_port(), mem.read_port(transparent_for=())
    m.submodules[name] = ram = SPRAM(width, depth)
    wr, rd = _Port(f"{name}_w", width, depth), _Port(f"{name}_r", width, depth)
    m.d.comb += [ram.addr.eq(Mux(wr.en, wr.addr, rd.addr)), ram.en.eq(wr.en | rd.en),
                 ram.w_en.eq(wr.en), ram.w_data.eq(wr.data), rd.data.eq(ram.r_data)]
    return wr, rd
