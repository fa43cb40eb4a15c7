"""The flow-control planner (`spikefab.host.flow`) without I/O: its plans, executed on the golden
model (`ChipModel` behind `ChipClient`, a UART-sized window), must never make the chip refuse a
request or drop an event, even when steps overflow every buffer: the host buffer (many recorded
spikes, long idle runs), the per-step input limit, and the window (steps of kilobytes of ids).
The spikes must equal the network's direct reference simulation of the ids the plan sent."""

import numpy as np
import pytest

from spikefab import protocol as P
from spikefab.host.flow import MAX_TICK, Fetch, FlowPlanner, Input, StepCosts, Tick, plan
from spikefab.host.link import ChipClient
from spikefab.host.network import Network, load
from spikefab.host.streaming import SpikesLost, counters_grown, stream
from spikefab.host.transport import UART_WINDOW, ModelTransport
from spikefab.sim import ChipModel
from spikefab.spec import ChipConfig, CoreConfig

#: 300 inputs (ids above 255: two-byte INPUT frames), 28 recorded neurons over two cores and a
#: host buffer of 64: two steps of spikes fill it, so the plan must fetch all the time.
CFG = ChipConfig(core=CoreConfig(n_neurons=16, n_axons=384, weights_per_word=4), n_cores=2,
                 n_inputs=300, route_entries=1024, max_host_events=1000, host_buffer=64)


def network(rng):
    net = Network()
    inp = net.add_input("in", 300)
    a = net.add_population("a", 20, beta=3000, threshold=100, record=True)   # cores 0 and 1
    b = net.add_population("b", 8, beta=3500, threshold=60, record=True)     # core 1
    net.connect(inp, a, rng.integers(-5, 40, (300, 20)) * (rng.random((300, 20)) < 0.2))
    net.connect(a, b, rng.integers(-10, 60, (20, 8)) * (rng.random((20, 8)) < 0.5))
    return net


def step_inputs(rng, steps):
    """(step, ids) with idle gaps, light steps, and heavy ones over the limit and the window."""
    out = []
    for t in range(steps):
        kind = rng.random()
        if kind < 0.3:
            continue                                            # no inputs: an idle step
        n = int(rng.integers(900, 1600)) if kind > 0.9 else int(rng.integers(1, 40))
        out.append((t, rng.integers(0, 300, n)))
    return out


def client_for(cfg):
    return ChipClient(ModelTransport(ChipModel(cfg), window=UART_WINDOW))


def execute(client, actions):
    """Send `actions` with ChipClient's public requests; return the (step, source) spikes."""
    found = []
    for action in actions:
        if isinstance(action, Input):
            client.send_input(action.ids)
        elif isinstance(action, Tick):
            client.send_tick(action.steps)
        else:
            client.send_fetch(action.limit, found.extend)
    client.flush()
    return found


def raster_of(actions, steps):
    """Event counts per step and input of the ids the plan sends."""
    raster = np.zeros((steps, 300), dtype=np.int64)
    for action in actions:
        if isinstance(action, Input):
            np.add.at(raster[action.step], action.ids, 1)
    return raster


def spikes_of(image, found, steps):
    out = {name: np.zeros((steps, len(image.placement[name])), dtype=bool)
           for name in image.recorded}
    for step, source in found:
        name, index = image.source_owner[source]
        out[name][step, index] = True
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_plan_on_the_model_loses_nothing_and_matches_the_reference(seed):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    net = network(rng)
    image = net.compile(CFG)
    steps = 160
    inputs = step_inputs(rng, steps - 5)             # the last steps are idle
    costs = StepCosts.of(image)
    planner = FlowPlanner(CFG, costs)
    actions = list(plan(CFG, costs, inputs, until=steps, planner=planner))
    # The run overflows each buffer if the plan did not take care.
    assert planner.capped > 0, "no step exceeded the per-step input limit"
    assert max(len(ids) for _, ids in inputs) * 2 > UART_WINDOW, "no step exceeded the window"
    assert any(isinstance(a, Tick) and a.steps > 1 for a in actions), "no idle run merged"
    for i, action in enumerate(actions):
        if isinstance(action, Input):
            assert actions[i + 1] == Tick(1)
            assert int(costs.routed[action.ids].sum()) <= CFG.max_host_events
    sent = sum(len(a.ids) for a in actions if isinstance(a, Input))
    assert sent + planner.capped == sum(len(ids) for _, ids in inputs)
    assert planner.current == steps

    client = client_for(CFG)
    load(client, image)
    before = client.status()
    found = execute(client, actions)
    after = client.status()
    assert counters_grown(before, after) == {}
    assert after["host_pending"] == 0 and after["step"] == steps
    got = spikes_of(image, found, steps)
    want = net.reference(CFG.core, {"in": raster_of(actions, steps)}, steps)
    for name in got:
        assert got[name].sum() > 100, f"population {name} hardly spiked"
        for t in range(steps):
            np.testing.assert_array_equal(got[name][t], want[name][t],
                                          err_msg=f"seed {seed}, population {name}, step {t}")

    # Without the plan's fetches (all of them at the end) the same run loses spikes: the test
    # really overflows the host buffer.
    naive = [a for a in actions if not isinstance(a, Fetch)]
    naive += [Fetch(P.FETCH_MAX)] * (CFG.host_buffer // P.FETCH_MAX + 1)
    client = client_for(CFG)
    load(client, image)
    before = client.status()
    execute(client, naive)
    assert counters_grown(before, client.status()).get("host_dropped", 0) > 0

    # The streaming loop runs this very plan.
    client = client_for(CFG)
    load(client, image)
    result = stream(client, image, inputs, until=steps)
    assert result.lost == {} and result.events_capped == planner.capped
    for name in got:
        np.testing.assert_array_equal(result.spikes[name], np.argwhere(got[name]))


def test_idle_runs_are_long_ticks_and_steps_must_ascend():
    """No recorded neuron: idle runs cost one TICK per MAX_TICK steps; no fetch at all."""
    cfg = ChipConfig(core=CoreConfig(n_neurons=4, n_axons=4, weights_per_word=1), n_cores=1,
                     n_inputs=2, route_entries=8, max_host_events=3, host_buffer=5)
    costs = StepCosts(routed=np.array([1, 2]), to_host=np.array([0, 1]), recorded=0)
    actions = list(plan(cfg, costs, [(0, [0]), (2 * MAX_TICK + 10, [1, 1, 0])], until=3 * MAX_TICK))
    assert actions == [
        Input(0, actions[0].ids, 0), Tick(1),
        Tick(MAX_TICK), Tick(MAX_TICK), Tick(9),
        Input(2 * MAX_TICK + 10, actions[5].ids, 2), Tick(1),      # [1] costs 2; [1, 1] 4 > 3
        Tick(MAX_TICK - 11), Fetch(P.FETCH_MAX)]                   # the host-routed input
    assert list(actions[5].ids) == [1]
    planner = FlowPlanner(cfg, costs)
    planner.step(3, [0])
    with pytest.raises(ValueError, match="steps must ascend: step 2 after 3"):
        planner.step(2, [0])
    with pytest.raises(ValueError, match=r"chip input ids must be in 0\.\.1"):
        planner.step(5, [2])


def test_a_step_beyond_the_host_buffer_is_counted_and_check_raises():
    """8 recorded spikes per step into a buffer of 3: no plan can avoid the loss; the loop
    counts it (`lost`) and `check` raises SpikesLost with what did arrive."""
    cfg = ChipConfig(core=CoreConfig(n_neurons=8, n_axons=8, weights_per_word=1), n_cores=1,
                     n_inputs=1, route_entries=16, max_host_events=8, host_buffer=3)
    net = Network()
    inp = net.add_input("in", 1)
    out = net.add_population("out", 8, threshold=10, record=True)
    net.connect(inp, out, np.full((1, 8), 100))
    image = net.compile(cfg)
    client = client_for(cfg)
    load(client, image)
    result = stream(client, image, [(t, [0]) for t in range(4)])
    assert result.lost == {"host_dropped": 20} and len(result.spikes["out"]) == 12
    with pytest.raises(SpikesLost, match=r"host_dropped \+20") as lost:
        result.check()
    assert lost.value.result is result
