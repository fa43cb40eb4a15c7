"""The board-level top: PLL clock, the chip behind its UART, and status LEDs.

Everything board specific comes from a `Board` description (`boards/icebreaker.py`,
`boards/ulx3s.py`); the amaranth-boards platform supplies the pins. A new board is one more
`Board` with the names of its clock, UART and LED resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Elaboratable, Module, Signal

from spikefab.hw.chip import ChipOverUART
from spikefab.spec import ChipConfig

from .pll import add_pll_domain

__all__ = ["Board", "BoardTop", "uart_divisor"]


@dataclass(frozen=True)
class Board:
    """What spikefab needs to know about a board beyond its amaranth-boards platform."""
    name: str
    platform: str                   #: "module:Class" of the amaranth-boards platform
    clock: str                      #: the input clock resource that feeds the PLL
    target_hz: float                #: default core clock
    chip: ChipConfig                #: default chip parameters (the largest that fits)
    led_activity: tuple = ()        #: (resource, number) of LEDs lit by UART traffic
    led_error: tuple = ()           #: ... lit once the UART saw a framing error or overflow
    led_heartbeat: tuple = ()       #: ... blinking at ~1 Hz while the PLL clock runs
    synth_opts: str = ""            #: extra `synth_<family>` options
    rx_fifo_depth: int | None = None  #: UART receive FIFO bytes (None: one maximal frame)
    cmd_fifo_depth: int = 16        #: entries of each core's command FIFO (events, ticks)
    programmers: tuple = ()         #: (tool, arguments before the bitstream) tried in order
    notes: list = field(default_factory=list)

    def make_platform(self):
        """Instantiate the platform (imported only now: amaranth-boards is the `boards` extra)."""
        import importlib
        module, name = self.platform.split(":")
        try:
            return getattr(importlib.import_module(module), name)()
        except ImportError as exc:
            raise RuntimeError("building for a board needs amaranth-boards and the YoWASP "
                               "tools: pip install 'spikefab[boards]'") from exc


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit; refuses a rate more than 2 % off (the receiver tolerates
    about -2.5 % / +4.4 %, see `spikefab.hw.uart`)."""
    divisor = round(clock_hz / baud)
    if divisor < 4 or abs(clock_hz / divisor - baud) > 0.02 * baud:
        raise ValueError(f"{baud} baud cannot be made from {clock_hz / 1e6:g} MHz "
                         f"(nearest divisor {divisor})")
    return divisor


class BoardTop(Elaboratable):
    """The chip on a board: `sync` from a PLL at `clock_hz`, ChipOverUART at `baud`, LEDs.

    After elaboration `clock_hz` holds the frequency the PLL actually makes and `divisor` the
    UART's clock cycles per bit.
    """

    def __init__(self, board: Board, chip: ChipConfig, *, clock_hz: float, baud: int,
                 memory_kind: str = "auto"):
        self.board, self.chip_cfg = board, chip
        self.clock_hz, self.baud, self.memory_kind = clock_hz, baud, memory_kind
        self.divisor = None

    def elaborate(self, platform):
        m = Module()
        self.clock_hz = add_pll_domain(m, platform, self.board.clock, self.clock_hz)
        self.divisor = uart_divisor(self.clock_hz, self.baud)
        fifo = {} if self.board.rx_fifo_depth is None else \
            {"rx_fifo_depth": self.board.rx_fifo_depth}
        m.submodules.chip = chip = ChipOverUART(self.chip_cfg, divisor=self.divisor,
                                                memory_kind=self.memory_kind,
                                                cmd_fifo_depth=self.board.cmd_fifo_depth, **fifo)
        uart = platform.request("uart", 0)
        m.d.comb += [chip.rx.eq(uart.rx.i), uart.tx.o.eq(chip.tx)]
        self._leds(m, platform, chip, uart)
        return m

    def _leds(self, m, platform, chip, uart):
        hz = int(self.clock_hz)
        # Activity: any low bit on either UART line, stretched to ~50 ms so a frame is visible.
        stretch = Signal(range(hz // 20 + 1))
        with m.If(~uart.rx.i | ~chip.tx):
            m.d.sync += stretch.eq(hz // 20)
        with m.Elif(stretch != 0):
            m.d.sync += stretch.eq(stretch - 1)
        activity = stretch != 0
        error = (chip.receiver.framing_errors != 0) | (chip.rx_overflow != 0)
        beat = Signal(range(hz // 2 + 1))
        heartbeat = Signal()
        m.d.sync += beat.eq(beat + 1)
        with m.If(beat == hz // 2):
            m.d.sync += [beat.eq(0), heartbeat.eq(~heartbeat)]
        for names, value in ((self.board.led_activity, activity), (self.board.led_error, error),
                             (self.board.led_heartbeat, heartbeat)):
            for name, number in names:
                m.d.comb += platform.request(name, number).o.eq(value)
