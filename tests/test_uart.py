# amaranth: UnusedElaboratable=no
"""The 8N1 UART under Verilator (or Icarus), driven and decoded bit by bit from Python.

The cocotb side is `spikefab.verify.uart_bench`.

Every case is seeded (the seed is printed and named in every failure message). The transmitter and
the receiver of a `UARTLoopbackHarness` share one divisor per case, so each divisor is one build.
"""

import time

import numpy as np
import pytest

from spikefab.hw.uart import UARTReceiver, UARTTransmitter
from spikefab.verify.harness import UARTLoopbackHarness
from spikefab.verify.rtlsim import SimulationFailed, run_cocotb

TOPLEVEL = "uart_harness"
TESTBENCH = "spikefab.verify.uart_bench"


def run(testcase: str, divisor: int, seed: int, **inputs) -> dict:
    print(f"seed {seed}, divisor {divisor}, {inputs}")
    scenario = {"seed": seed, "tx_divisor": divisor, "rx_divisor": divisor, **inputs}
    start = time.monotonic()
    result = run_cocotb(UARTLoopbackHarness(divisor, divisor), TOPLEVEL, TESTBENCH, testcase,
                        {k: np.asarray(v) for k, v in scenario.items()})
    print(f"{testcase}: {int(result['bytes_checked'])} bytes checked "
          f"in {time.monotonic() - start:.1f} s")
    return result


@pytest.mark.parametrize("mismatch", [-0.02, 0.0, 0.02])
@pytest.mark.parametrize("divisor", [4, 7, 16, 104])
def test_receive_random_bytes_with_clock_mismatch(divisor, mismatch):
    """Back-to-back and gapped frames from a sender 2 % slow, exact or 2 % fast."""
    seed = 1000 * divisor + round(100 * mismatch) + 50
    n_bytes = 60 if divisor < 100 else 40
    result = run("receive_bytes", divisor, seed, mismatch=mismatch, n_bytes=n_bytes)
    assert int(result["bytes_checked"]) == n_bytes


@pytest.mark.parametrize("mismatch", [-0.07, 0.07])
def test_receive_beyond_tolerance_fails(mismatch):
    """Past the documented tolerance (-4.3 % / +5.5 % at divisor 16) the bench must see errors."""
    with pytest.raises(SimulationFailed, match=r"^seed 7016: divisor 16, mismatch .*: byte \d+"):
        run("receive_bytes", 16, 7016, mismatch=mismatch, n_bytes=20)


@pytest.mark.parametrize("divisor", [4, 16, 104])
def test_transmit_random_bytes(divisor):
    """Each bit exactly `divisor` cycles, no dead time between back-to-back frames."""
    seed = 2000 + divisor
    n_bytes = 60 if divisor < 100 else 40
    result = run("transmit_bytes", divisor, seed, n_bytes=n_bytes)
    assert int(result["bytes_checked"]) == n_bytes
    # The random gaps must have produced both back-to-back and separated frames.
    assert 0 < int(result["back_to_back"]) < n_bytes - 1


@pytest.mark.parametrize("divisor", [7, 16])
def test_loopback(divisor):
    result = run("loopback", divisor, 3000 + divisor, n_bytes=40)
    assert int(result["bytes_checked"]) == 40


@pytest.mark.parametrize("divisor", [4, 16])
def test_framing_error_drops_only_the_bad_byte(divisor):
    run("framing_error", divisor, 4000 + divisor)


@pytest.mark.parametrize("divisor", [16, 104])
def test_glitch_on_idle_line_is_ignored(divisor):
    result = run("glitch", divisor, 5000 + divisor)
    assert len(result["glitch_lengths"]) > 1


@pytest.mark.parametrize("divisor", [4, 16])
def test_overflow_drops_and_counts_the_second_byte(divisor):
    run("overflow", divisor, 6000 + divisor)


@pytest.mark.parametrize("cls, divisor", [(UARTReceiver, 3), (UARTTransmitter, 2.5),
                                          (UARTTransmitter, 0), (UARTReceiver, True),
                                          (UARTReceiver, "16")])
def test_bad_divisor_is_rejected(cls, divisor):
    with pytest.raises(ValueError, match=r"^divisor must be an integer >= 4, not ") as info:
        cls(divisor)
    assert str(info.value) == f"divisor must be an integer >= 4, not {divisor!r}"


def test_ports():
    rx, tx = UARTReceiver(4), UARTTransmitter(104)
    assert rx.signature.members["rx"].init == 1
    assert tx.signature.members["tx"].init == 1
    assert rx.o.payload.shape().width == 8 and tx.i.payload.shape().width == 8
    assert len(rx.framing_errors) == 32 and len(rx.overflow) == 32
