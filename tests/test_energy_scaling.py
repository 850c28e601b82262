"""The model sees the energy: EnergyScaling turns the normalised energy into a deflection
angle in a reference field inside the model; the data keep the textbook's format. Models
saved with the layer load, in the grader's safe mode too."""

import numpy as np
import pytest

import keras

from crsky.models import INVERSE_ENERGY_MEAN, INVERSE_ENERGY_STD, EnergyScaling, build_reference_model, model_inputs
from crsky.simulate import simulate
from crsky.spectrum import EnergySampler, energy_feature
from crsky.training import permute_energies

pytestmark = pytest.mark.keras


def test_constants_are_the_spectrum_moments_of_40_eev_over_e():
    sampler = EnergySampler()
    quantiles = np.linspace(0, 1, 400001)
    inverse = 40.0 / np.exp(np.interp(quantiles, sampler._cdf, sampler._log_energy))
    assert inverse.mean() == pytest.approx(INVERSE_ENERGY_MEAN, abs=2e-4)
    assert inverse.std() == pytest.approx(INVERSE_ENERGY_STD, abs=2e-4)


def test_energy_becomes_a_deflection_angle_and_coordinates_stay():
    maps = simulate("textbook", 250, seed=1)["data"]
    features = np.concatenate([maps[..., 3:], maps[..., :3]], axis=-1)
    out = keras.ops.convert_to_numpy(EnergyScaling()(features))
    np.testing.assert_allclose(out[..., 1:], features[..., 1:])
    radians_per_unit = np.radians(320.0 / 40.0)  # 8 deg for a proton at 40 EeV in the reference field
    assert abs(out[..., 0].mean()) < 0.02 * radians_per_unit
    assert out[..., 0].std() == pytest.approx(INVERSE_ENERGY_STD * radians_per_unit, rel=0.03)
    # 40 EeV and 80 EeV: 8 and 4 deg, minus the spectrum's mean (6.4 deg).
    check = np.array([[[energy_feature(40.0), 0, 0, 1], [energy_feature(80.0), 0, 0, 1]]], dtype="float32")
    scaled = keras.ops.convert_to_numpy(EnergyScaling()(check))[0, :, 0]
    expected = np.radians(np.array([8.0, 4.0]) - 8.0 * INVERSE_ENERGY_MEAN)
    np.testing.assert_allclose(scaled, expected, rtol=1e-3, atol=1e-5)
    doubled = keras.ops.convert_to_numpy(EnergyScaling(640.0)(check))[0, :, 0]
    np.testing.assert_allclose(doubled, 2 * expected, rtol=1e-3, atol=1e-5)  # twice the reference field


def test_reference_model_keeps_its_parameters_and_saves_with_the_layer(tmp_path):
    model = build_reference_model()
    assert model.count_params() == 4802  # the edge kernel first (crsky.models.edge_kernel)
    assert isinstance(model.get_layer("energy_scaling"), EnergyScaling)
    assert build_reference_model(kernel="textbook").count_params() == 4770
    assert build_reference_model(energy_scaling=False).count_params() == 4770  # the textbook's model
    maps = simulate("textbook", 4, seed=2)["data"]
    before = model.predict(model_inputs(maps), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(model_inputs(maps), verbose=0), before, rtol=1e-5, atol=1e-6)


def test_the_grader_loads_a_model_with_the_layer_in_safe_mode(tmp_path):
    from crsky.scoring import load_submitted_model, predict_signal_probability

    model = build_reference_model()
    maps = simulate("textbook", 4, seed=2)["data"]
    model.save(tmp_path / "dgcnn.keras")
    loaded = load_submitted_model(tmp_path / "dgcnn.keras")
    assert isinstance(loaded.get_layer("energy_scaling"), EnergyScaling)
    np.testing.assert_allclose(predict_signal_probability(loaded, maps),
                               model.predict(model_inputs(maps), verbose=0)[:, 1], rtol=1e-5, atol=1e-6)


def test_permute_energies_shuffles_within_each_map_only():
    maps = simulate("textbook", 3, seed=3)["data"]
    permuted = permute_energies(maps, seed=1)
    np.testing.assert_array_equal(permuted[..., :3], maps[..., :3])
    for m in range(3):
        np.testing.assert_array_equal(np.sort(permuted[m, :, 3]), np.sort(maps[m, :, 3]))
    assert not np.array_equal(permuted[..., 3], maps[..., 3])
