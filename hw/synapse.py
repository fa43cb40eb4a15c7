"""Synapse memory: A x N weights in words of K, behind one single-port interface.

The single port (one address for read and write) matches the iCE40UP5K's SPRAM, so a board can
swap this behavioural `lib.memory` version for `SB_SPRAM256KA` instances without touching the core.
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.spec import CoreConfig

__all__ = ["SynapseMemory", "synapse_word_bits", "synapse_address_width"]


def synapse_word_bits(cfg: CoreConfig) -> int:
    """Bits of the word index inside an axon's row: ceil(log2(N / K))."""
    return (cfg.words_per_axon - 1).bit_length()


def synapse_address_width(cfg: CoreConfig) -> int:
    return max(1, (cfg.n_axons - 1).bit_length() + synapse_word_bits(cfg))


class SynapseMemory(wiring.Component):
    """Single-port synapse memory; address = (axon << word_bits) | word.

    A read issued with `r_en` in one cycle has its word on `r_data` in the next; `r_data` holds
    while `r_en` is low. `w_en` writes `w_data`; do not read and write in the same cycle.
    """

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        width = cfg.weights_per_word * cfg.weight_width
        super().__init__({
            "addr": In(synapse_address_width(cfg)),
            "r_en": In(1),
            "r_data": Out(width),
            "w_en": In(1),
            "w_data": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.cfg.n_axons << synapse_word_bits(self.cfg)
        m.submodules.mem = mem = Memory(shape=unsigned(len(self.w_data)), depth=depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += [
            rd.addr.eq(self.addr), rd.en.eq(self.r_en), self.r_data.eq(rd.data),
            wr.addr.eq(self.addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data),
        ]
        return m
