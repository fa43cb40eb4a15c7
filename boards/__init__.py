"""FPGA boards (iCEBreaker, ULX3S) built with Yosys and nextpnr from PyPI (YoWASP).

`spikefab.boards.build` is the `spikefab build` command; `top` the board-level design
(PLL, chip over UART, LEDs); `icebreaker` and `ulx3s` what each board adds to amaranth-boards.
"""
