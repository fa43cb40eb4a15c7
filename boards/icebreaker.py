"""iCEBreaker (Lattice iCE40UP5K-SG48, FT2232H): what spikefab adds to amaranth-boards.

One full 256-neuron x 256-axon core with 8-bit weights (synapse memory in two SPRAMs, the frame
buffers in the other two), the router and the UART host link. Logic is what limits the UP5K:
with the chip's default neuron widths (16-bit current and membrane, 12 fraction bits) the design
needs about 5,480 LCs of 5,280, so the default here narrows the neuron datapath to 12-bit current
and membrane with 8 fraction bits (still wider than ODIN's 8-bit membrane), caps a step at 1024
input events per core, and shortens the route list and host buffer (docs/boards.md).
"""

from spikefab.spec import ChipConfig, CoreConfig

from .top import Board

__all__ = ["BOARD"]

BOARD = Board(
    name="icebreaker",
    platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
    clock="clk12",
    # A PLL clock with an exact UART divisor for 1 Mbaud (18) and timing margin. 19.125 MHz
    # (divisor 19, 0.7 % slow) placed at Fmax 19.8, then 19.64 MHz, but at 18.93 MHz from another
    # checkout folder: the placement depends on the design's source paths, so that 0.3 % margin
    # was luck. At 18 MHz the same design places at 19.3 MHz (docs/boards.md).
    target_hz=18e6,
    # A host that waits for each reply (ChipClient does) never has more than one frame in
    # flight, and the frame receiver holds it: 16 bytes of UART FIFO instead of a whole frame
    # saves ~110 LCs. Bytes of a request sent before the previous reply are then dropped and
    # counted (error LED), and the damaged frame gets an error reply.
    rx_fifo_depth=16,
    # With one core the command FIFO only smooths router bursts (a full FIFO stalls the router,
    # it loses nothing): 2 entries instead of 16 save ~70 LCs, without which the chip no longer
    # fits. `verify/formal_delivery.py` proves delivery at exactly this depth.
    cmd_fifo_depth=2,
    chip=ChipConfig(core=CoreConfig(current_width=12, voltage_width=12, decay_width=8,
                                    max_events_per_step=1024),
                    n_cores=1, n_inputs=256, route_entries=512, max_host_events=512,
                    host_buffer=256),
    led_activity=(("led", 1),),      # green
    led_error=(("led", 0),),         # red
    synth_opts="-dsp",
    programmers=(("openFPGALoader", ("-b", "icebreaker")), ("iceprog", ())),
)
