"""ULX3S 85F (Lattice ECP5 LFE5U-85F, FT231X): what spikefab adds to amaranth-boards.

Block RAM decides how many cores fit: a 256 x 256 core with 8-bit weights needs 32 DP16KD for
its synapses and 5 for its accumulators, state and parameters. Five full cores fit the 208
DP16KD (205 used) when the host buffer holds 2048 output spikes instead of 4096; the route
list keeps its 4096 entries. Six cores cannot fit (6 x 37 > 208).
"""

from spikefab.spec import ChipConfig, CoreConfig

from .top import Board

__all__ = ["BOARD"]

BOARD = Board(
    name="ulx3s",
    platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
    clock="clk25",
    # The highest clock tried that meets timing: Fmax 36.7 MHz post-route at 35 MHz; at 37.5
    # MHz (four cores) nextpnr reached 36.9 MHz, not enough (benchmarks/boards.md).
    target_hz=35e6,
    chip=ChipConfig(core=CoreConfig(), n_cores=5, host_buffer=2048),
    led_activity=(("led", 0),),
    led_heartbeat=(("led", 1),),
    led_error=(("led", 7),),
    programmers=(("openFPGALoader", ("-b", "ulx3s")),),
)
