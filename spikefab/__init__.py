"""spikefab: an open, verified FPGA neuromorphic accelerator.

Subpackages: `spikefab.hw` (Amaranth gateware), `spikefab.sim` (bit-exact NumPy golden model),
`spikefab.host` (host-side tools), `spikefab.boards` (FPGA boards); `spikefab.spec` holds the
numeric specification that the model and the gateware share.
"""

__version__ = "0.1.0"
