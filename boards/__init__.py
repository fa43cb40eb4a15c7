"""FPGA board support (iCEBreaker, ULX3S) built with Yosys and nextpnr; see the boards issue."""
