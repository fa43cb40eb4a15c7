"""ULX3S 85F (Lattice ECP5 LFE5U-85F, FT231X): what spikeforge adds to amaranth-boards.

Block RAM decides how many cores fit: a 256 x 256 core with 8-bit weights needs 32 DP16KD for
its synapses alone, so the 208 EBR hold four full cores with the router and host buffers.
"""

from spikeforge.spec import ChipConfig, CoreConfig

from .top import Board

__all__ = ["BOARD"]

BOARD = Board(
    name="ulx3s",
    platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
    clock="clk25",
    target_hz=30e6,
    chip=ChipConfig(core=CoreConfig(), n_cores=4),
    led_activity=(("led", 0),),
    led_heartbeat=(("led", 1),),
    led_error=(("led", 7),),
    programmers=(("openFPGALoader", ("-b", "ulx3s")),),
)
