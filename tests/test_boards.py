# amaranth: UnusedElaboratable=no
"""Board builds: PLL settings, build checks, and both boards synthesised, placed and routed.

The two real builds (Yosys + nextpnr from YoWASP) run once per session in fixtures; several
tests read their results. They take a few minutes (see docs/boards.md for measured times).
"""

import json

import pytest

from spikefab.boards import build as B
from spikefab.boards.area import rollup
from spikefab.boards.pll import ecp5_pll, ice40_pll
from spikefab.boards.top import uart_divisor
from spikefab.cli import main
from spikefab.spec import ChipConfig

# PLL settings and parameters (no tools) ------------------------------------------------------

@pytest.mark.parametrize("f_in,f_target", [(12e6, 24e6), (12e6, 30e6), (12e6, 48e6)])
def test_ice40_pll_setting_is_within_the_data_sheet_ranges(f_in, f_target):
    s = ice40_pll(f_in, f_target)
    f_pfd = f_in / (s.divr + 1)
    f_vco = f_pfd * (s.divf + 1)
    assert 10e6 <= f_pfd <= 133e6 and 533e6 <= f_vco <= 1066e6 and 1 <= s.divq <= 6
    assert s.f_out == f_vco / 2 ** s.divq
    assert abs(s.f_out - f_target) / f_target < 0.01


def test_ice40_pll_24mhz_is_exact():
    s = ice40_pll(12e6, 24e6)
    assert (s.divr, s.divf, s.divq, s.f_out) == (0, 63, 5, 24e6)


@pytest.mark.parametrize("f_target", [50e6, 75e6, 100e6, 125e6])
def test_ecp5_pll_setting_is_within_the_data_sheet_ranges(f_target):
    s = ecp5_pll(25e6, f_target)
    assert s.f_out == 25e6 * s.clkfb_div / s.clki_div == f_target
    assert 400e6 <= s.f_out * s.clkop_div <= 800e6


def test_pll_refuses_impossible_clocks():
    with pytest.raises(ValueError, match="16..275 MHz"):
        ice40_pll(12e6, 5e6)
    with pytest.raises(ValueError, match="3.125..400 MHz"):
        ecp5_pll(25e6, 500e6)


def test_uart_divisor():
    assert uart_divisor(24e6, 1_000_000) == 24
    assert uart_divisor(100e6, 115200) == 868
    with pytest.raises(ValueError, match="cannot be made"):
        uart_divisor(24e6, 12_000_000)


def test_chip_config_changes_only_what_is_asked():
    board = B.BOARDS["icebreaker"]
    assert B.chip_config(board) == board.chip
    chip = B.chip_config(board, neurons=128, route_entries=256)
    assert chip.core == board.chip.core.replace(n_neurons=128)
    assert chip.route_entries == 256 and chip.n_inputs == board.chip.n_inputs
    with pytest.raises(ValueError, match="n_cores"):
        B.chip_config(board, cores=0)


def test_board_defaults_hold_the_promised_chips():
    ice, ulx = B.BOARDS["icebreaker"].chip, B.BOARDS["ulx3s"].chip
    for chip in (ice, ulx):
        assert (chip.core.n_neurons, chip.core.n_axons, chip.core.weight_width) == (256, 256, 8)
    assert ulx.n_cores >= 4


def test_report_checker_flags_overuse_and_missed_timing(tmp_path):
    """The summary is read from nextpnr's report; over-use and a slow clock are problems."""
    (tmp_path / "report.json").write_text(json.dumps({
        "utilization": {"ICESTORM_LC": {"used": 6000, "available": 5280},
                        "ICESTORM_SPRAM": {"used": 2, "available": 4}},
        "fmax": {"clk": {"achieved": 20.5, "constraint": 24.0}}}))
    (tmp_path / "spikefab.rpt").write_text(
        "   9 cells\n     1   SB_DFF\n   40 cells\n     12   SB_DFFE\n     3   SB_DFF\n")

    class Top:
        clock_hz, divisor = 24e6, 24

    class Platform:
        family, device = "iCE40", "iCE40UP5K"
    result = B._read_reports(B.BOARDS["icebreaker"], Platform, ChipConfig(), Top, tmp_path, 1.0,
                             tmp_path / "x.bin", 1_000_000)
    assert result.flip_flops == 15 and not result.timing_met
    assert result.resources["SPRAM (256 kbit)"] == (2, 4)
    assert any("LC: 6000 used" in p for p in result.problems)
    assert any("timing not met" in p for p in result.problems)
    assert "timing NOT MET" in result.summary()


def test_program_says_what_to_install_without_a_programmer(monkeypatch, tmp_path):
    monkeypatch.setattr(B.shutil, "which", lambda name: None)
    result = B.BuildResult("icebreaker", "iCE40UP5K", ChipConfig(), 1.0, 1.0, {}, 0, 0.0,
                           tmp_path / "x.bin", 1, 1)
    with pytest.raises(B.BuildFailed, match="openFPGALoader or iceprog is not installed"):
        B.program(result)


def test_build_refuses_a_synapse_memory_larger_than_the_sprams(capsys):
    assert main(["build", "--board", "icebreaker", "--axons", "1024"]) == 1
    assert "needs 10 SPRAMs (1 core(s) x 8 for the synapses" in capsys.readouterr().err
    assert main(["build", "--board", "icebreaker", "--cores", "2"]) == 1
    assert "needs 6 SPRAMs" in capsys.readouterr().err


def test_build_refuses_an_unknown_board():
    with pytest.raises(SystemExit):
        main(["build", "--board", "nosuchboard"])


def test_area_rollup_classifies_cells_per_block():
    modules = {
        "top": {"SB_LUT4": 5, "SB_PLL40_PAD": 1, "top.chip": 1, "top.pin_led_0": 1},
        "top.pin_led_0": {},
        "top.pin_led_0.buf": {"SB_LUT4": 1},
        "top.chip": {"SB_LUT4": 100, "SB_CARRY": 20, "SB_DFFESR": 7, "SB_DFF": 3,
                     "SB_MAC16": 1, "top.chip.core0": 1},
        "top.chip.core0": {"SB_RAM40_4K": 4, "SB_SPRAM256KA": 2},
        "top.chip.empty": {"top.chip.empty.x": 1},
    }
    blocks = rollup("iCE40", modules)
    assert list(blocks) == ["board", "chip", "chip.core0"]      # no resources: left out
    assert blocks["board"]["LUT4"] == 6                            # the top and its pins
    assert blocks["chip"] == {"LUT4": 100, "carry": 20, "FF": 10, "BRAM": 0, "SPRAM": 0,
                              "DSP": 1}
    assert (blocks["chip.core0"]["BRAM"], blocks["chip.core0"]["SPRAM"]) == (4, 2)


def test_area_of_a_small_plastic_chip(tmp_path, capsys):
    # Yosys without flattening (~40 s): every block of the design gets its own row.
    assert main(["build", "--board", "icebreaker", "--neurons", "16", "--axons", "16",
                 "--inputs", "16", "--plastic", "--area", "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    cells = [[c.strip(" *") for c in line.strip().strip("|").split("|")]
             for line in out.splitlines() if line.startswith("| ")]
    rows = {row[0]: [int(n) for n in row[2:]] for row in cells[1:]
            if all(n.isdigit() for n in row[2:])}
    lut4, _, _, bram, spram, dsp = rows["chip.chip.core0.plasticity"]
    assert lut4 > 500 and bram > 0 and dsp > 0 and spram == 0
    total = rows.pop("total")
    assert total[4] == 3        # synapses, receive and transmit frame buffers: one SPRAM each
    assert total == [sum(column) for column in zip(*rows.values())]
    assert (tmp_path / "icebreaker-area" / "stat.json").exists()


# Real builds ---------------------------------------------------------------------------------

# Both builds start in the background as soon as the session is collected (tests/conftest.py).

@pytest.fixture(scope="session")
def icebreaker_build(board_build):
    return board_build("icebreaker")


@pytest.fixture(scope="session")
def ulx3s_build(board_build):
    return board_build("ulx3s")


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s"])
def test_board_meets_timing_and_fits(board, board_build):
    result = board_build(board)
    assert result.timing_met, result.summary()
    # The PLL's actual output is within 1 % of the board's target clock.
    assert abs(result.target_hz / B.BOARDS[result.board].target_hz - 1) < 0.01
    for label, (used, available) in result.resources.items():
        assert used <= available, f"{label}: {used} of {available}"
    assert result.bitstream.stat().st_size > 100_000


def test_icebreaker_synapses_and_frame_buffers_are_in_spram(icebreaker_build):
    # One 256 x 256 core with 8-bit weights: 512 kbit in two SPRAMs; one each frame buffer.
    assert icebreaker_build.resources["SPRAM (256 kbit)"] == (4, 4)
    assert icebreaker_build.resources["PLL"][0] == 1
    core = icebreaker_build.chip.core
    assert (core.n_neurons, core.n_axons, core.weight_width, core.weights_per_word) == \
        (256, 256, 8, 2)


def test_ulx3s_holds_at_least_four_full_cores(ulx3s_build):
    assert ulx3s_build.chip.n_cores >= 4
    assert ulx3s_build.chip.core.n_neurons * ulx3s_build.chip.core.n_axons == 256 * 256
    assert ulx3s_build.resources["PLL"][0] == 1
