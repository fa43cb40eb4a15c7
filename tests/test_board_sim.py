"""The native simulated board (`spikefab.boards.sim`, `spikefab board-sim`): faults behave as on a
board. A client that disconnects mid-frame or mid-request leaves no trace for the next one, a
stream of garbage, a second client, and a board killed mid-run all end in one clear error or a
working link, never in a hang. The client (`ChipClient` with resync) survives stale bytes too."""

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

from spikefab import protocol as P
from spikefab.cli import main
from spikefab.host.device import open_device
from spikefab.host.link import ChipClient, LinkError
from spikefab.host.transport import ModelTransport, SerialTransport
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig

CFG = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=64, weights_per_word=4), n_cores=2,
                 n_inputs=32, route_entries=256, max_host_events=24, host_buffer=40)

# The outside fuzzer's two cases (issue 14): a whole request whose reply nobody reads, and the
# start of a frame, each followed by a disconnect; then a new client's IDENTIFY.
TICK_300_TAG_42 = bytes.fromhex("07 21 42 2c 01 e5 5d 00")
IDENTIFY_TAG_9 = bytes.fromhex("05 01 09 bf 17 00")
PARTIAL_FRAME = bytes.fromhex("05 01 01")
IDENTIFY_TAG_7 = bytes.fromhex("05 01 07 5e d9 00")


def board_url():
    """The URL of a board under test: `$SPIKEFAB_TEST_BOARD_URL` (a running board of CFG, e.g.
    the cocotb one, to compare) or a fresh native board."""
    return os.environ.get("SPIKEFAB_TEST_BOARD_URL")


@pytest.fixture(scope="module")
def board():
    from spikefab.boards.sim import NativeBoard
    if board_url():
        yield board_url()
        return
    with NativeBoard(CFG) as b:
        yield b.url


def one_reply(url, request, timeout=30.0):
    """Connect, send `request`, return the payload of the first reply frame."""
    host, port = url.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        data = b""
        while P.DELIMITER not in data:
            chunk = conn.recv(4096)
            assert chunk, "the board closed the connection"
            data += chunk
    return P.decode_frame(data[:data.index(P.DELIMITER)])


def send_and_leave(url, data):
    host, port = url.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(data)


@pytest.mark.parametrize("left_behind, request_, tag", [
    (TICK_300_TAG_42, IDENTIFY_TAG_9, 9),
    (PARTIAL_FRAME, IDENTIFY_TAG_7, 7),
])
def test_next_client_gets_its_own_reply(board, left_behind, request_, tag):
    send_and_leave(board, left_behind)
    reply = one_reply(board, request_)
    assert reply[:3] == bytes([P.Op.IDENTIFY | P.REPLY_FLAG, tag, P.Status.OK]), reply.hex()


@pytest.mark.parametrize("left_behind", [TICK_300_TAG_42, PARTIAL_FRAME, b"\x00" + P.request(
    P.Op.READ_STATUS, 1) * 3, bytes(range(1, 200))], ids=["reply", "partial", "replies", "junk"])
def test_client_survives_a_previous_sessions_bytes(left_behind):
    """Stale bytes in the link (the chip's replies to them, or a partial frame in its receiver)
    are discarded by a resynchronising client, which then gets the right replies."""
    model = ChipModel(CFG)
    transport = ModelTransport(model)
    transport.write(left_behind)
    client = ChipClient(transport, resync=True, timeout=2)
    assert client.config == CFG
    client.write_regs(P.Reg.SCRATCH, [0x1234])
    assert client.read_regs(P.Reg.SCRATCH, 1) == [0x1234]
    assert client.status()["step"] == (300 if left_behind == TICK_300_TAG_42 else 0)


def test_client_without_resync_is_strict():
    """Without resync (a link known to be fresh) a stale reply is an error, not skipped."""
    transport = ModelTransport(ChipModel(CFG))
    transport.write(TICK_300_TAG_42)
    with pytest.raises(LinkError, match="IDENTIFY"):
        ChipClient(transport, timeout=2)


def test_a_client_that_leaves_mid_frame_leaves_the_chip_state_and_no_trace(board):
    with open_device(board, timeout=10) as device:
        device.client.write_regs(P.Reg.SCRATCH, [0xC0FFEE])
        before = device.client.status()
    frame = P.request(P.Op.WRITE_REGS, 3, bytes(2) + (0xBAD).to_bytes(4, "little"))
    send_and_leave(board, frame[:len(frame) // 2])
    with open_device(board, timeout=10) as device:
        assert device.client.read_regs(P.Reg.SCRATCH, 1) == [0xC0FFEE]   # state kept
        after = device.client.status()
    # The half frame was ended by the board and answered (to nobody): one error counted.
    errors = [s["crc_errors"] + s["frame_errors"] for s in (before, after)]
    assert errors[1] == errors[0] + 1


def test_a_stream_of_garbage_then_a_working_link(board):
    seed = 14
    print(f"garbage seed {seed}")
    garbage = np.random.default_rng(seed).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    send_and_leave(board, garbage)                        # a new client finds a clean board
    with open_device(board, timeout=10) as device:
        assert device.config == CFG
    # The same client, garbage first: its own resync discards the error replies.
    transport = SerialTransport(board, window=None)
    try:
        transport.write(garbage)
        client = ChipClient(transport, resync=True, timeout=10)
        assert client.config == CFG and client.status()["step"] >= 0
    finally:
        transport.close()


def test_a_second_client_is_refused_while_the_first_is_served(board):
    with open_device(board, timeout=10) as first:
        started = time.monotonic()
        with pytest.raises(LinkError, match=board):
            open_device(board, timeout=5)
        assert time.monotonic() - started < 5          # refused at once, not timed out
        assert first.client.status()["crc_errors"] >= 0  # the first is still served
    with open_device(board, timeout=10) as second:        # and then the next one
        assert second.config == CFG


def test_stale_bytes_in_a_pty_are_survived_by_the_client():
    """A pty has no disconnect (as a board's USB bridge): the client resynchronises itself."""
    from spikefab.boards.sim import NativeBoard
    with NativeBoard(CFG, pty=True) as board:
        for left_behind in (TICK_300_TAG_42, PARTIAL_FRAME):
            fd = os.open(board.url, os.O_RDWR | os.O_NOCTTY)
            os.write(fd, left_behind)
            time.sleep(0.2)
            os.close(fd)
            with open_device(f"serial://{board.url}?baud=3000000", timeout=10) as device:
                assert device.config == CFG
                assert device.client.status()["step"] >= 300


def test_a_board_killed_mid_run_gives_one_clear_error_and_leaves_nothing(capsys):
    from spikefab.boards.sim import NativeBoard
    board = NativeBoard(CFG)
    port = int(board.url.rsplit(":", 1)[1])
    try:
        device = open_device(board.url, timeout=5)
        threading.Timer(0.5, os.kill, (board.process.pid, signal.SIGKILL)).start()
        started = time.monotonic()
        with pytest.raises(LinkError, match=board.url):
            for _ in range(100_000):
                device.client.tick(1)
        assert time.monotonic() - started < 10
        device.close()
    finally:
        board.close()
    assert board.process.returncode == -signal.SIGKILL      # reaped: no zombie
    socket.create_server(("127.0.0.1", port)).close()      # the port is free again
    assert main(["info", "--device", board.url, "--timeout", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot open" in err and "\n" not in err


def test_close_stops_the_board_and_frees_its_port():
    from spikefab.boards.sim import NativeBoard
    board = NativeBoard(CFG, port=0)
    port = int(board.url.rsplit(":", 1)[1])
    with open_device(board.url, timeout=10) as device:
        device.client.tick(2)
        board.close()          # while its client is still connected: SIGTERM, then a report
    assert board.stats()["cycles"] > 2 * CFG.core.n_neurons
    assert board.process.returncode is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    socket.create_server(("127.0.0.1", port)).close()


def test_replay_checks_every_reply_byte():
    """`replay` (run_on_rtl's fast path) passes the model's own replies and names the first
    request chunk whose reply differs."""
    from spikefab.boards.sim import replay
    from spikefab.host.transport import RecordingTransport
    from spikefab.verify.rtlsim import SimulationFailed
    transport = RecordingTransport(ChipModel(CFG))
    client = ChipClient(transport)
    client.write_regs(P.Reg.SCRATCH, [7])
    client.tick(3)
    client.status()
    stats = replay(CFG, transport.requests, transport.replies)
    assert stats["cycles"] > 3 * CFG.core.n_neurons
    wrong = list(transport.replies)
    wrong[2] = wrong[2][:4] + bytes([wrong[2][4] ^ 1]) + wrong[2][5:]
    with pytest.raises(SimulationFailed, match="request chunk 2"):
        replay(CFG, transport.requests, wrong)


def test_the_build_index_key_covers_configuration_tools_and_gateware_sources():
    """The index that skips the Verilog conversion must change whenever the Verilog could."""
    from spikefab.boards.sim import _source_files, _source_key
    keys = {_source_key(CFG, None, "tools"), _source_key(CFG, 4, "tools"),
            _source_key(CFG, None, "other tools"),
            _source_key(ChipConfig(core=CFG.core, n_cores=3), None, "tools")}
    assert len(keys) == 4
    hashed = {"/".join(p.parts[-2:]) for p in _source_files()}
    for gateware in ("hw/chip.py", "hw/core.py", "hw/uart.py", "verify/simboard.py",
                     "spikefab/protocol.py", "spikefab/spec.py", "sim/__init__.py"):
        assert gateware in hashed


def test_a_missing_cxx_compiler_is_one_line_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert main(["info", "--device", "sim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no C++ compiler (/nonexistent/c++)" in err[0], err
