"""Hardware in the loop: the host's ChipClient against a programmed board on a serial port.

Runs only when a board is attached: set SPIKEFAB_BOARD_PORT to its serial port (e.g.
/dev/ttyUSB1 for the iCEBreaker's second FT2232H channel), SPIKEFAB_BOARD to its name
(icebreaker or ulx3s) and optionally SPIKEFAB_BOARD_BAUD (default 1000000, the build's
default). Program the board first: `spikefab build --board <name> --program`.
"""

import os
import time

import numpy as np
import pytest

from spikefab import protocol as P
from spikefab.host.link import ChipClient, LinkError

PORT = os.environ.get("SPIKEFAB_BOARD_PORT")
pytestmark = pytest.mark.skipif(
    not PORT, reason="no board attached: set SPIKEFAB_BOARD_PORT (and SPIKEFAB_BOARD) to "
                     "run the hardware-in-the-loop tests")


class SerialTransport:
    """The link transport over a real serial port (pyserial): frames end at a 0x00 byte."""

    def __init__(self, port: str, baud: int):
        import serial
        self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        self.serial.reset_input_buffer()
        self._pending = bytearray()

    def write(self, data: bytes):
        self.serial.write(data)

    def read_frame(self, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or 5.0)
        while (end := self._pending.find(P.DELIMITER)) < 0:
            if time.monotonic() > deadline:
                raise LinkError("the board sent no reply")
            self._pending += self.serial.read(max(1, self.serial.in_waiting))
        body = bytes(self._pending[:end])
        del self._pending[:end + 1]
        return body


@pytest.fixture(scope="module")
def client():
    from spikefab.boards.build import BOARDS
    board = os.environ.get("SPIKEFAB_BOARD", "icebreaker")
    if board not in BOARDS:
        pytest.fail(f"SPIKEFAB_BOARD must be one of {sorted(BOARDS)}, not {board!r}")
    transport = SerialTransport(PORT, int(os.environ.get("SPIKEFAB_BOARD_BAUD", 1_000_000)))
    chip = ChipClient(transport)
    assert chip.config == BOARDS[board].chip, "the board runs a different chip configuration"
    yield chip
    transport.serial.close()


def test_identify_and_status(client):
    assert client.identify().config == client.config
    client.reset()
    assert client.status()["step"] == 0


def test_weights_round_trip_and_a_step(client):
    """Write random weights, read them back, run steps; the step counter follows."""
    rng = np.random.default_rng(6)
    print("seed 6")
    words = [int(w) for w in rng.integers(0, 1 << 16, 300)]
    client.write_weights(0, 0, words)
    assert client.read_weights(0, 0, len(words)) == words
    client.reset()
    assert client.tick(3) == 3
