"""Session-wide test set-up.

The two real board builds take minutes of single-threaded Yosys and nextpnr. As soon as the
session has collected a test that needs one, they start, one after the other, in a background
process, so they run on the machine's second core while the simulations run on the first; the
tests that need them run last and wait for the result (the `board_build` fixture).
"""

import concurrent.futures
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import pytest

#: fixture name -> board name
BOARD_BUILDS = {"icebreaker_build": "icebreaker", "ulx3s_build": "ulx3s"}

_pool: concurrent.futures.ProcessPoolExecutor | None = None
_futures: dict[str, concurrent.futures.Future] = {}
_build_root: Path | None = None


def build_board_quietly(board: str, build_dir: str):
    """Build `board` in `build_dir`/`board`; the tools' output goes to `board`-tools.log there."""
    from spikefab.boards import build as B
    Path(build_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(build_dir) / f"{board}-tools.log", "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        return B.build(board, build_dir=build_dir, log=lambda *args: None)


def _start(board: str):
    global _pool, _build_root
    if _pool is None:
        _pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        _build_root = Path(tempfile.mkdtemp(prefix="spikefab-boards-"))
    if board not in _futures:
        _futures[board] = _pool.submit(build_board_quietly, board, str(_build_root))
    return _futures[board]


def _boards_needed(item) -> list[str]:
    names = getattr(item, "fixturenames", ())
    needed = [board for fixture, board in BOARD_BUILDS.items() if fixture in names]
    callspec = getattr(item, "callspec", None)
    if "board_build" in names and callspec is not None and "board" in callspec.params:
        needed.append(callspec.params["board"])
    return needed


def pytest_collection_modifyitems(session, config, items):
    """Tests that wait for a board build run last, so the build overlaps everything else."""
    items.sort(key=lambda item: bool(_boards_needed(item)))    # stable: order otherwise kept


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for item in session.items:
        for board in _boards_needed(item):
            _start(board)


def pytest_sessionfinish(session):
    if _pool is None:
        return
    _pool.shutdown(cancel_futures=True)
    failed = any(f.done() and not f.cancelled() and f.exception() for f in _futures.values())
    if failed:
        print(f"\nboard builds kept for inspection in {_build_root}")
    else:
        shutil.rmtree(_build_root, ignore_errors=True)


@pytest.fixture(scope="session")
def board_build():
    """`board_build(name)`: the finished build of board `name` (started in the background)."""
    def result(board: str):
        outcome = _start(board).result()
        print(outcome.summary())
        return outcome
    return result
