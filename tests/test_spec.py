"""The shared numeric specification: parameter validation, packing, float conversion."""

import pytest

from spikefab.spec import (
    ChipConfig,
    CoreConfig,
    Field,
    NeuronParams,
    decay_from_float,
    decay_from_tau,
    pack_fields,
    pack_weight_word,
    unpack_fields,
    unpack_weight_word,
)


@pytest.mark.parametrize("change, message", [
    ({"n_neurons": 0}, "n_neurons must be an integer in 1..4096, not 0"),
    ({"n_neurons": 4097}, "n_neurons must be an integer in 1..4096"),
    ({"n_axons": 5000}, "n_axons must be an integer in 1..4096"),
    ({"weights_per_word": 3}, r"weights_per_word \(3\) must divide n_neurons \(256\)"),
    ({"weight_width": 1}, "weight_width must be an integer in 2..16"),
    ({"decay_width": 17}, "decay_width must be an integer in 1..16"),
    ({"max_events_per_step": 0}, "max_events_per_step must be an integer in 1..1048576"),
    ({"n_neurons": 2.5}, "n_neurons must be an integer"),
])
def test_out_of_range_config_is_rejected_with_the_allowed_range(change, message):
    with pytest.raises(ValueError, match=message):
        CoreConfig(**change)


def test_config_allows_1024_and_more_neurons():
    assert CoreConfig(n_neurons=1024, weights_per_word=4).words_per_axon == 256
    assert CoreConfig(n_neurons=4096, n_axons=4096).synapse_depth == 4096 * 2048


def test_pack_unpack_roundtrip_and_range_check():
    layout = [Field("a", 4, True), Field("b", 3, False)]
    word = pack_fields(layout, {"a": -8, "b": 5})
    assert word == (0b1000 | (5 << 4))
    assert unpack_fields(layout, word) == {"a": -8, "b": 5}
    with pytest.raises(ValueError, match="field b must be in 0..7, not 8"):
        pack_fields(layout, {"a": 0, "b": 8})


def test_weight_word_places_neuron_jk_plus_k_at_lane_k():
    cfg = CoreConfig(weights_per_word=4)
    word = pack_weight_word(cfg, [1, -1, 127, -128])
    assert word == 0x80_7F_FF_01
    assert unpack_weight_word(cfg, word) == [1, -1, 127, -128]


def test_float_conversions():
    cfg = CoreConfig()
    assert decay_from_float(cfg, 0.9) == 3686           # round(0.9 * 4096)
    assert decay_from_float(cfg, 1.0) == 4096 and decay_from_float(cfg, 0.0) == 0
    assert decay_from_tau(cfg, tau=20.0, dt=1.0) == 3896  # exp(-1/20) * 4096 = 3896.2
    with pytest.raises(ValueError, match="decay factor must be in 0..1"):
        decay_from_float(cfg, 1.5)


def test_a_threshold_above_the_membrane_maximum_is_an_error_not_a_clamp():
    # V saturates at Vmax and the spike test is V > threshold: a threshold above Vmax (once
    # silently clamped to Vmax) makes a neuron that can never fire.
    cfg = CoreConfig(n_neurons=4, n_axons=4, weights_per_word=1, voltage_width=8)
    with pytest.raises(ValueError, match=r"threshold must be in 0..127.*could never fire"):
        NeuronParams.uniform(cfg, threshold=200)
    assert NeuronParams.uniform(cfg, threshold=127).threshold[0] == 127  # allowed: never fires
    assert NeuronParams.uniform(cfg).threshold[0] == 63  # the default fits: half of Vmax
    assert NeuronParams.uniform(CoreConfig()).threshold[0] == 64 * 128  # as before


@pytest.mark.parametrize("name, value", [("threshold", 100.5), ("bias", 0.25), ("reset", 1.5),
                                         ("beta", float("nan")), ("alpha", "3")])
def test_parameters_are_never_truncated(name, value):
    with pytest.raises(ValueError, match=f"{name} must be"):
        NeuronParams.uniform(CoreConfig(), **{name: value})
    assert NeuronParams.uniform(CoreConfig(), threshold=100.0).threshold[0] == 100


def test_packing_and_plastic_cores_refuse_fractions():
    with pytest.raises(ValueError, match="weight must be whole numbers"):
        pack_weight_word(CoreConfig(), [1.5, 0])
    with pytest.raises(ValueError, match="field b must be whole numbers"):
        pack_fields([Field("b", 3, False)], {"b": 2.5})
    with pytest.raises(ValueError, match="plastic must be True, False or core indices"):
        ChipConfig(plastic=(1.5,))


def test_a_leaky_decay_never_rounds_to_no_decay():
    cfg = CoreConfig()  # F = 12
    assert decay_from_float(cfg, 1 - 0.6 / 4096) == 4095  # 4095.4
    with pytest.raises(ValueError, match="rounds to 1"):
        decay_from_float(cfg, 1 - 0.4 / 4096)  # 4095.6
    with pytest.raises(ValueError, match="rounds to 1 \\(no decay\\)"):
        decay_from_tau(cfg, tau=100_000.0, dt=1.0)
    assert decay_from_tau(cfg, tau=4000.0, dt=1.0) == 4095
