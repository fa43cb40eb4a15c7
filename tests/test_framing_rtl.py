# amaranth: UnusedElaboratable=no
"""Framing gateware (COBS + CRC-16) against the `cobs`/`crc` libraries, byte for byte."""

import numpy as np
import pytest

from spikefab.verify.framing_bench import FrameEcho
from spikefab.verify.rtlsim import run_cocotb


@pytest.mark.parametrize("seed, gap, stall", [(1, 0.0, 0.0), (2, 0.3, 0.5), (3, 0.1, 0.9)])
def test_echo_matches_library_framing_with_errors_gaps_and_back_pressure(seed, gap, stall):
    print(f"seed {seed}")
    result = run_cocotb(FrameEcho(), "frame_echo", "spikefab.verify.framing_bench",
                        "echo_traffic", {"seed": np.array(seed), "count": np.array(40),
                                         "gap_prob": np.array(gap),
                                         "stall_prob": np.array(stall)})
    assert len(result["received"]) > 1000
