"""One recording through the golden model in-process, the simulated board (chip gateware under
Verilator) over a TCP socket and over a pty: identical output spikes, equal to the network's
direct reference simulation. Plus broken links and the command line."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from spikefab.cli import main
from spikefab.host.device import _config_arg, open_device
from spikefab.host.encode import Encoder, EncoderConfig
from spikefab.host.events import open_recording, write_recording
from spikefab.host.flow import StepCosts
from spikefab.host.link import LinkError
from spikefab.host.network import Network
from spikefab.host.synthetic import moving_shapes
from spikefab.spec import ChipConfig, CoreConfig

# A small chip (fast to build and simulate) with a small host buffer, so streaming must fetch
# often, and a per-step input limit the recording exceeds, so the cap is exercised.
CFG = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=64, weights_per_word=4), n_cores=2,
                 n_inputs=32, route_entries=256, max_host_events=24, host_buffer=40)
ENCODER = EncoderConfig(dt_us=1000, pool=(4, 4), polarity="split", refractory_us=300)


def network(seed=5):
    rng = np.random.default_rng(seed)
    net = Network()
    inp = net.add_input("events", 32)
    a = net.add_population("a", 20, beta=3600, threshold=120, refractory=1, record=True)
    b = net.add_population("b", 8, beta=3800, threshold=90, record=True)
    net.connect(inp, a, rng.integers(-10, 60, (32, 20)) * (rng.random((32, 20)) < 0.5))
    net.connect(a, b, rng.integers(-20, 70, (20, 8)) * (rng.random((20, 8)) < 0.5))
    return net


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    events = moving_shapes(16, 16, duration_us=300_000, frame_us=500, noise_hz=2.0, seed=9)
    return write_recording(tmp_path_factory.mktemp("rec") / "shapes.raw", events, (16, 16))


def encoded(path):
    rec = open_recording(path)
    enc = Encoder(ENCODER, (rec.width, rec.height))
    steps = []
    for chunk in rec.chunks():
        steps += enc.feed(chunk)
    return steps + enc.finish()


def stream_on(device, path):
    image = network().compile(device.config)
    device.load(image)
    return device.stream(image, "events", encoded(path))


def test_model_stream_matches_the_network_reference(recording):
    steps = encoded(recording)
    with open_device("model", config=CFG) as device:
        result = stream_on(device, recording)
    assert result.events_capped > 0                 # the limit was hit, and counted
    assert result.events_sent + result.events_capped == sum(len(i) for _, i in steps)
    # The reference gets exactly the events the device sent: the first ones of each step, as
    # many as the chip's routed-event limit allows (an input routed to 2 cores costs 2).
    image = network().compile(CFG)
    routed = StepCosts.of(image).routed[image.input_ids["events"]]
    n = result.steps
    raster = np.zeros((n, 32), dtype=np.int64)
    for step, ids in steps:
        cost = np.cumsum(routed[ids])
        assert len(ids) > 0 and cost[0] <= CFG.max_host_events
        np.add.at(raster[step], ids[cost <= CFG.max_host_events], 1)
    want = network().reference(CFG.core, {"events": raster}, n)
    for name in ("a", "b"):
        got = np.zeros_like(want[name])
        got[result.spikes[name][:, 0], result.spikes[name][:, 1]] = True
        assert got.sum() > 20, f"population {name} hardly spiked"
        np.testing.assert_array_equal(got, want[name], err_msg=f"population {name}")


def start_board(*extra):
    """Start `spikefab board-sim` (our own process group); return (process, url)."""
    ready = f"/tmp/spikefab-test-board-{os.getpid()}-{time.monotonic_ns()}"
    process = subprocess.Popen([sys.executable, "-m", "spikefab.cli", "board-sim",
                                "--config", _config_arg(CFG), "--ready-file", ready, *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 600
    while not os.path.exists(ready):
        assert process.poll() is None, "board-sim stopped"
        assert time.monotonic() < deadline, "board-sim did not start"
        time.sleep(0.1)
    url = open(ready).read()
    os.unlink(ready)
    return process, url


def stop_board(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


def test_model_socket_and_pty_boards_give_identical_spikes(recording):
    with open_device("model", config=CFG) as device:
        model = stream_on(device, recording)
    board, url = start_board("--port", "0", "--once")
    try:
        assert url.startswith("socket://127.0.0.1:")
        with open_device(url, timeout=60) as device:
            assert device.config == CFG
            over_socket = stream_on(device, recording)
        board.wait(60)                              # --once: ends when we disconnect
    finally:
        stop_board(board)
    board, url = start_board("--pty")
    try:
        assert url.startswith("/dev/pts/")
        with open_device(f"serial://{url}?baud=3000000", timeout=60) as device:
            over_pty = stream_on(device, recording)
            status = device.client.status()
    finally:
        stop_board(board)
    for result in (over_socket, over_pty):
        assert result.steps == model.steps and result.events_sent == model.events_sent
        for name in model.spikes:
            np.testing.assert_array_equal(result.spikes[name], model.spikes[name],
                                          err_msg=f"population {name}")
    assert status["crc_errors"] == status["frame_errors"] == 0


class ModelBoard:
    """A stand-in board launcher: the golden model behind a local TCP socket (a thread)."""

    def __init__(self, cfg):
        from spikefab.sim import ChipModel
        self.model, self.closed = ChipModel(cfg), False
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:                  # closed before any client came
            return
        with conn:
            while data := conn.recv(65536):
                conn.sendall(self.model.feed(data))

    def close(self):
        self.server.close()
        self.thread.join(10)
        self.closed = True


def test_simulated_board_transport_owns_its_launcher(recording):
    from spikefab.host.device import Device
    from spikefab.host.transport import ModelTransport, SimBoardTransport, Transport
    from spikefab.sim import ChipModel
    assert isinstance(ModelTransport(ChipModel(CFG)), Transport)
    with open_device("model", config=CFG) as device:
        model = stream_on(device, recording)
    board = ModelBoard(CFG)
    transport = SimBoardTransport(board)
    assert isinstance(transport, Transport) and isinstance(transport.link, Transport)
    with Device(transport) as device:
        assert device.name == f"simulated board at {board.url}"
        result = stream_on(device, recording)
    assert board.closed and not board.thread.is_alive()
    for name in model.spikes:
        np.testing.assert_array_equal(result.spikes[name], model.spikes[name])
    # A board whose URL cannot be opened is stopped all the same.
    board = ModelBoard(CFG)
    board.url = "socket://127.0.0.1:1"
    with pytest.raises(LinkError, match="cannot open socket://127.0.0.1:1"):
        SimBoardTransport(board)
    assert board.closed


def test_device_sim_starts_and_stops_its_own_board(recording):
    """`open_device("sim")`: the transport starts the simulated board (no `spikefab` command
    process), and closing the device ends the board's process and frees its port."""
    with open_device("model", config=CFG) as device:
        model = stream_on(device, recording)
    device = open_device("sim", config=CFG)
    try:
        board = device.transport.inner.launcher
        assert "spikefab.cli" not in board.process.args
        port = int(board.url.rsplit(":", 1)[1])
        result = stream_on(device, recording)
    finally:
        device.close()
    assert board.process.poll() is not None            # ended and reaped
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    for name in model.spikes:
        np.testing.assert_array_equal(result.spikes[name], model.spikes[name])


def test_device_that_stops_answering_times_out():
    server = socket.create_server(("127.0.0.1", 0))     # accepts, never replies
    port = server.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(LinkError, match="no reply within 0.5 s"):
            open_device(f"socket://127.0.0.1:{port}", timeout=0.5)
        assert time.monotonic() - started < 10
    finally:
        server.close()


def test_board_that_dies_mid_run_gives_a_link_error(recording):
    board, url = start_board("--port", "0")
    try:
        device = open_device(url, timeout=2)
        image = network().compile(device.config)
        device.load(image)
        stop_board(board)
        with pytest.raises(LinkError):
            device.stream(image, "events", encoded(recording))
        device.close()
    finally:
        stop_board(board)


def test_missing_serial_port_and_unknown_device():
    with pytest.raises(LinkError, match="cannot open serial:///dev/ttyNOSUCH0"):
        open_device("serial:///dev/ttyNOSUCH0?baud=115200")
    with pytest.raises(ValueError, match="unknown device 'fpga'"):
        open_device("fpga")


def test_cli_run_default_saves_spikes_and_picture(tmp_path, capsys):
    assert main(["run", "-q", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bytes/event" in out and "events/s" in out
    saved = np.load(tmp_path / "spikes.npz")
    lines = (tmp_path / "spikes.csv").read_text().splitlines()
    assert lines[0] == "population,neuron,step,time_us"
    n = len(saved["spikes_lines"]) + len(saved["spikes_orientation"])
    assert n > 100 and len(lines) == n + 1
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_run_reports_capped_and_lost_events(tmp_path, capsys):
    """A chip too small for the run: the summary counts what was cut and what the chip dropped,
    and the saved spikes are the ones that arrived."""
    assert main(["run", "-q", "--out", str(tmp_path), "--config",
                 "max_host_events=4,host_buffer=2"]) == 0
    out = capsys.readouterr().out
    capped = int(out.split(" over the chip's per-step limit")[0].rsplit(", ", 1)[1])
    assert capped > 1000
    assert "lost:      the chip dropped events (host_dropped +" in out
    saved = np.load(tmp_path / "spikes.npz")
    assert f"lines: {len(saved['spikes_lines'])} from" in out


@pytest.mark.parametrize("argv, message", [
    (["run", "nope.aedat4"], "nope.aedat4: no such file"),
    (["run", "--device", "serial:///dev/ttyNOSUCH0"], "cannot open serial:///dev/ttyNOSUCH0"),
    (["run", "--pool", "4", "--crop", "0,0,64,64"], "--crop 0,0,64,64 --pool 4x4 does not fit"),
    (["run", "--network", "nothing.py"], "unknown network 'nothing.py'"),
    (["info", "--config", "cores=two"], "must be key=integer"),
])
def test_cli_user_mistakes_are_one_line(argv, message, capsys, tmp_path):
    assert main(argv + ([] if argv[0] != "run" else ["--out", str(tmp_path)])) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_info_on_the_model(capsys):
    assert main(["info", "--config", _config_arg(CFG)]) == 0
    out = capsys.readouterr().out
    assert "cores" in out and "host_buffer" in out and "crc_errors" in out


def test_board_behind_its_uart_gives_the_same_spikes(recording):
    """board-sim --uart-divisor: the bytes cross 8N1 lines into ChipOverUART (first 40 steps)."""
    steps = [(s, ids) for s, ids in encoded(recording) if s < 40]
    image = network().compile(CFG)
    results = []
    board, url = start_board("--port", "0", "--once", "--uart-divisor", "4")
    try:
        for spec in ("model", url):
            with open_device(spec, config=CFG, timeout=60) as device:
                device.load(image)
                results.append(device.stream(image, "events", steps))
                if spec == url:
                    status = device.client.status()
    finally:
        stop_board(board)
    model, uart = results
    assert sum(len(s) for s in model.spikes.values()) > 5
    for name in model.spikes:
        np.testing.assert_array_equal(uart.spikes[name], model.spikes[name])
    assert status["uart_framing_errors"] == 0 and status["crc_errors"] == 0
