"""Where the area goes: resources per block of the design, from a hierarchical Yosys synthesis.

`spikefab build --board B [chip parameters] --area` runs only Yosys, without flattening the
design, and prints the cells of every block (protocol engine, core, plasticity unit, router,
frame buffers, UART, ...): LUT4s, carry cells, flip-flops, block RAMs, SPRAMs and DSPs. It takes
seconds to a few minutes and works for designs that do not fit (the case it is for: which
block to shrink). The counts are Yosys's (`stat -json`); they differ a little from the full
build's, which optimises across blocks and whose logic cells pack a LUT4, a carry and a
flip-flop together (so LCs are fewer than LUT4s + carries + flip-flops).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from spikefab.spec import ChipConfig

__all__ = ["AreaReport", "CELL_CLASSES", "area", "classify", "rollup"]

#: Resource column -> Yosys cell types counted in it, per family.
CELL_CLASSES = {
    "iCE40": {"LUT4": ("SB_LUT4",), "carry": ("SB_CARRY",), "FF": ("SB_DFF",),
              "BRAM": ("SB_RAM40_4K",), "SPRAM": ("SB_SPRAM256KA",), "DSP": ("SB_MAC16",)},
    "ecp5": {"LUT4": ("LUT4",), "carry": ("CCU2C",), "FF": ("TRELLIS_FF",),
             "LUTRAM": ("TRELLIS_DPR16X4",), "BRAM": ("DP16KD",),
             "DSP": ("MULT18X18D", "ALU54B")},
}
#: The devices' totals for the same columns (data sheets; nextpnr reports the same numbers).
DEVICE_TOTALS = {
    "iCE40UP5K": {"LUT4": 5280, "FF": 5280, "BRAM": 30, "SPRAM": 4, "DSP": 8},
    "LFE5U-85F": {"LUT4": 83640, "FF": 83640, "BRAM": 208, "DSP": 156},
}
BOARD_BLOCK = "board"
#: What a block is, by the last part of its name (digits dropped: core0, cmd_fifo1, ...).
WHAT = {
    "board": "PLL, LEDs, reset synchroniser, I/O (boards/top.py)",
    "chip": "protocol engine: requests, replies, chip registers, counters (hw/chip.py)",
    "core": "LIF core: controller, neuron datapath, accumulators, state (hw/core.py)",
    "fifo": "a FIFO's storage and pointers (hw/fifo.py)",
    "plasticity": "plasticity unit: learning state, update datapath (hw/plasticity.py)",
    "spikes": "the core's output spike FIFO",
    "synapses": "synapse memory interface (hw/synapse.py)",
    "ram": "synapse memory",
    "delivery": "event delivery to the cores (hw/delivery.py)",
    "cmd_fifo": "a core's command FIFO",
    "host_fifo": "output spikes held for the host",
    "router": "event router, route tables (hw/router.py)",
    "rx": "frame receiver: COBS, CRC (hw/framing.py)",
    "tx": "frame transmitter: CRC, COBS (hw/framing.py)",
    "buf": "frame buffer",
    "rx_fifo": "UART receive FIFO",
    "uart_rx": "UART receiver (hw/uart.py)",
    "rx_sync": "UART input synchroniser",
    "uart_tx": "UART transmitter (hw/uart.py)",
}


def classify(family: str, cells: dict[str, int]) -> dict[str, int]:
    """Count `cells` (Yosys cell type -> number) into the family's resource columns; cell
    types that are no resource (submodule instances, PLL, I/O) are not counted."""
    counts = {}
    for column, prefixes in CELL_CLASSES[family].items():
        counts[column] = sum(n for cell, n in cells.items() if cell.startswith(prefixes))
    return counts


def rollup(family: str, modules: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per block (hierarchical name without the top's, e.g. "chip.chip.core0.plasticity"):
    its own cells classified, its sub-blocks excluded. The top and its pin buffers form
    `BOARD_BLOCK`; blocks without any resource are left out."""
    top = min(modules, key=len)
    blocks: dict[str, dict[str, int]] = {}
    for name, cells in sorted(modules.items()):
        counts = classify(family, cells)
        relative = name[len(top) + 1:]
        block = BOARD_BLOCK if name == top or relative.startswith(("pin_", "reset_sync")) \
            else relative
        total = blocks.setdefault(block, dict.fromkeys(counts, 0))
        for column, n in counts.items():
            total[column] += n
    return {block: counts for block, counts in blocks.items() if any(counts.values())}


@dataclass
class AreaReport:
    """The blocks' resources of one design; `table()` formats them."""
    board: str
    device: str
    family: str
    blocks: dict[str, dict[str, int]]

    @property
    def totals(self) -> dict[str, int]:
        columns = CELL_CLASSES[self.family]
        return {c: sum(b[c] for b in self.blocks.values()) for c in columns}

    def table(self) -> str:
        """A Markdown table, one row per block, then the total and the device's capacity."""
        columns = list(CELL_CLASSES[self.family])
        capacity = DEVICE_TOTALS.get(self.device, {})
        lines = ["| block | what | " + " | ".join(columns) + " |",
                 "|---|---|" + "---:|" * len(columns)]
        for block, counts in self.blocks.items():
            what = WHAT.get(block.split(".")[-1].rstrip("0123456789"), "")
            lines.append(f"| {block} | {what} | " +
                         " | ".join(str(counts[c]) for c in columns) + " |")
        totals = self.totals
        lines.append("| **total** | | " +
                     " | ".join(f"**{totals[c]}**" for c in columns) + " |")
        lines.append(f"| *{self.device} has* | | " +
                     " | ".join(str(capacity.get(c, "")) for c in columns) + " |")
        return "\n".join(lines)


def area(board_name: str, chip: ChipConfig | None = None, *, build_dir: Path | str = "build",
         log=print) -> AreaReport:
    """Synthesise `chip` for `board_name` with Yosys, without flattening, and count per block.

    Writes `<build_dir>/<board>-area/` (the RTLIL and Yosys's `stat.json`). Raises
    `subprocess.CalledProcessError` if Yosys fails.
    """
    from .build import BOARDS, NAME, _tool_environment
    from .top import BoardTop
    board = BOARDS[board_name]
    chip = chip or board.chip
    platform = board.make_platform()
    top = BoardTop(board, chip, clock_hz=board.target_hz, baud=1_000_000)
    out = Path(build_dir) / f"{board.name}-area"
    _tool_environment()
    platform.prepare(top, name=NAME).extract(str(out))
    synth = "synth_ice40" if platform.family == "iCE40" else f"synth_{platform.family}"
    script = (f"read_rtlil {NAME}.il; {synth} {board.synth_opts} -noflatten -top {NAME}; "
              f"tee -q -o stat.json stat -json")
    log(f"synthesising {board.name} without flattening in {out} (Yosys) ...")
    subprocess.run([os.environ["YOSYS"], "-q", "-l", "area.log", "-p", script], cwd=out,
                   check=True, stdout=subprocess.DEVNULL)
    stat = json.loads((out / "stat.json").read_text())
    modules = {name.lstrip("\\"): module["num_cells_by_type"]
               for name, module in stat["modules"].items()}
    return AreaReport(board.name, str(platform.device), platform.family,
                      rollup(platform.family, modules))
