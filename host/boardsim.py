"""The cocotb-served simulated board as a process of its own, for `SimBoardTransport`.

`CocotbBoard(cfg)` runs `python -m spikefab.host.boardsim` in a new session: that process builds
the simulated board (`spikefab.verify.simboard.SimBoard`, cached Verilator build) and serves it on
a free local TCP port through the cocotb bridge `spikefab.verify.board_bench` (the same server as
`spikefab board-sim`, without the command line). The launcher waits until the board listens;
`url` is then its `socket://127.0.0.1:PORT`. `close()` waits for the board to end (it does when
its client disconnects), else stops its whole process group (the simulator is a child of the
cocotb runner) and reaps it. The board also ends when the process that started it ends.

Any object with `url` and `close()` can take its place (`transport.BoardLauncher`), e.g. a native
simulator harness.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from spikefab.spec import ChipConfig

from .errors import LinkError

__all__ = ["CocotbBoard", "main"]


class CocotbBoard:
    """The simulated board of chip configuration `cfg` (default `ChipConfig()`), optionally
    behind its UART at `uart_divisor` cycles per bit. Raises `LinkError` (with the end of the
    board's log) if it stops or does not listen within `build_timeout` seconds."""

    def __init__(self, cfg: ChipConfig | None = None, *, uart_divisor: int | None = None,
                 build_timeout: float = 900):
        from .device import _config_arg
        self._dir = tempfile.TemporaryDirectory(prefix="spikefab-board-")
        ready = Path(self._dir.name) / "url"
        command = [sys.executable, "-m", "spikefab.host.boardsim", "--ready-file", str(ready),
                   "--config", _config_arg(cfg or ChipConfig()), "--parent", str(os.getpid())]
        if uart_divisor:
            command += ["--uart-divisor", str(uart_divisor)]
        self._log_path = Path(self._dir.name) / "board.log"
        with open(self._log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.url = self._wait_for(ready, build_timeout)
        except BaseException:
            self.close(timeout=0)
            raise

    def _wait_for(self, ready: Path, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise LinkError(f"the simulated board stopped before it listened: {self.tail()}")
            if time.monotonic() > deadline:
                raise LinkError(f"the simulated board did not start within {timeout:g} s")
            time.sleep(0.1)
        return ready.read_text()

    def tail(self, lines: int = 10) -> str:
        """The end of the board's log, on one line."""
        text = self._log_path.read_text(errors="replace") if self._log_path.exists() else ""
        return " | ".join(text.splitlines()[-lines:]) or "no output"

    def close(self, timeout: float = 10):
        """Wait up to `timeout` s for the board to end, then stop its process group; reap it."""
        if self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGTERM)     # its own session only
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    """Serve one simulated board on a free local port until its first client disconnects."""
    parser = argparse.ArgumentParser(prog="python -m spikefab.host.boardsim",
                                     description=main.__doc__)
    parser.add_argument("--ready-file", type=Path, required=True,
                        help="receives the URL once the board listens")
    parser.add_argument("--config", required=True, help="chip configuration (KEY=N,...)")
    parser.add_argument("--uart-divisor", type=int)
    parser.add_argument("--parent", type=int, help="end when this process ends")
    args = parser.parse_args(argv)
    if args.parent:
        threading.Thread(target=_end_with, args=(args.parent,), daemon=True).start()
    from spikefab.verify.rtlsim import serve_board

    from .device import parse_config
    serve_board(parse_config(args.config), "socket:127.0.0.1:0", ready_file=args.ready_file,
                once=True, uart_divisor=args.uart_divisor)


def _end_with(parent: int):
    """Stop this board's process group (the simulator too) once `parent` is gone: a host that
    died without closing its transport leaves no board running."""
    while os.getppid() == parent:
        time.sleep(1)
    os.killpg(os.getpgid(0), signal.SIGTERM)


if __name__ == "__main__":
    main()
