"""spikeforge: an open, verified FPGA neuromorphic accelerator.

Subpackages: `spikeforge.hw` (Amaranth gateware), `spikeforge.sim` (bit-exact NumPy golden model),
`spikeforge.host` (host-side tools), `spikeforge.boards` (FPGA boards); `spikeforge.spec` holds the
numeric specification that the model and the gateware share.
"""

__version__ = "0.1.0"
