"""The shared numeric specification: parameter validation, packing, float conversion."""

import pytest

from spikefab.spec import (
    CoreConfig,
    Field,
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
