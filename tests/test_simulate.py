"""Physics of the simulator: isotropy, the energy spectrum, streets, the JF12 field,
determinism and parameter errors."""

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from crsky.deflection import JF12Lens, jf12_field, line_of_sight_integral
from crsky.sky import EQUATORIAL_TO_GALACTIC, angular_distance, auger_exposure, fisher_smear, isotropic_directions, vectors_to_lonlat
from crsky.presets import PRESETS, SkyParameters, as_parameters
from crsky.simulate import BLOCK_SIZE, simulate
from crsky.spectrum import energy_feature, energy_from_feature

# Quantiles of the normalised energy in the example map plotted in the textbook's exercise
# (Deep Learning for Physics Research, Exercise 10.1), read off the plot.
TEXTBOOK_MAP_QUANTILES = {0.25: 0.9583, 0.50: 0.9604, 0.75: 0.9632, 0.90: 0.9673}


@pytest.fixture(scope="module")
def textbook_maps():
    return simulate("textbook", 1000, seed=3)


def test_isotropic_maps_are_isotropic(textbook_maps):
    iso = textbook_maps["data"][textbook_maps["label"] == 0][..., :3].reshape(-1, 3)
    lon, lat = vectors_to_lonlat(iso)
    assert stats.kstest(np.sin(lat), stats.uniform(-1, 2).cdf).pvalue > 0.01
    assert stats.kstest(lon, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01


def test_a_non_isotropic_sample_fails_the_same_test():
    """The isotropy test above can fail: a sky with a 5 % cluster does."""
    rng = np.random.default_rng(0)
    vectors = isotropic_directions(rng, (20000,))
    vectors[:2000] = fisher_smear(rng, np.tile([0.0, 0.0, 1.0], (2000, 1)), np.radians(10))
    _, lat = vectors_to_lonlat(vectors)
    assert stats.kstest(np.sin(lat), stats.uniform(-1, 2).cdf).pvalue < 0.01


def test_energy_quantiles_match_the_textbook(textbook_maps):
    energy = textbook_maps["data"][..., 3]
    for q, expected in TEXTBOOK_MAP_QUANTILES.items():
        assert abs(np.quantile(energy, q) - expected) < 0.002, q
    assert energy.min() >= energy_feature(39.8) - 1e-6 and energy.max() <= 1.0


def test_energy_feature_round_trip():
    energy = np.array([40.0, 100.0, 316.0])
    np.testing.assert_allclose(energy_from_feature(energy_feature(energy)), energy)
    assert energy_feature(10 ** 20.5 / 1e18) == pytest.approx(1.0)


def test_signal_maps_have_their_share_of_source_cosmic_rays(textbook_maps):
    """Poisson multiplicities: each source's count is Poisson around its share, so a map's
    total has the mean and the variance signal_fraction * n_events (25)."""
    params = PRESETS["textbook"]
    source_id = textbook_maps["source_id"]
    label = textbook_maps["label"]
    per_map = (source_id >= 0).sum(axis=1)
    expected = params.signal_fraction * params.n_events
    signal = per_map[label == 1]
    assert abs(signal.mean() - expected) < 4 * np.sqrt(expected / len(signal))
    assert 0.75 * expected < signal.var() < 1.3 * expected  # Poisson: variance = mean
    per_source = np.stack([(source_id == s).sum(axis=1) for s in range(params.n_sources)], axis=1)[label == 1]
    share = expected / params.n_sources
    assert abs(per_source.mean() - share) < 4 * np.sqrt(share / per_source.size)
    assert np.all(per_map[label == 0] == 0)
    assert abs(label.mean() - 0.5) < 0.01
    assert np.all(np.isnan(textbook_maps["source_direction"][label == 0]))


def test_fixed_multiplicity_gives_every_source_its_share():
    params = dataclasses.replace(PRESETS["textbook"], multiplicity="fixed")
    sim = simulate(params, BLOCK_SIZE, seed=4)
    signal = sim["source_id"][sim["label"] == 1]
    counts = np.stack([(signal == s).sum(axis=1) for s in range(params.n_sources)], axis=1)
    assert np.all(counts == 5)


def test_euclidean_fluxes_share_the_signal_unequally():
    params = dataclasses.replace(PRESETS["textbook"], source_flux="euclidean", n_sources=10)
    sim = simulate(params, 1000, seed=4)
    signal = sim["source_id"][sim["label"] == 1]
    counts = np.sort(np.stack([(signal == s).sum(axis=1) for s in range(params.n_sources)], axis=1), axis=1)
    assert abs(counts.sum(axis=1).mean() - 25) < 4 * np.sqrt(25 / len(counts))  # the same mean signal
    # The brightest source of a map carries far more than a tenth of it (equal fluxes: 2.5 of 25).
    assert counts[:, -1].mean() > 8 and np.median(counts[:, 0]) == 0


@pytest.mark.parametrize("preset", ["auger", "jf12"])
def test_exposure_and_lens_keep_the_mean_signal(preset):
    """The exposure and the lens's magnification act as recording probabilities; cosmic
    rays are emitted so that on average signal_fraction * n_events are recorded."""
    sim = simulate(preset, 1000, seed=6)
    recorded = (sim["source_id"] >= 0).sum(axis=1)[sim["label"] == 1]
    assert abs(recorded.mean() - 25) < 1.5
    assert recorded.var() > 25  # more than Poisson: exposure and magnification vary from source to source


def sharp_streets(charge=1, deflection="constant", strength=320.0, n_maps=BLOCK_SIZE):
    multiplicity = "fixed" if deflection == "constant" else "poisson"  # 6 per source: a great circle to fit
    params = SkyParameters(n_sources=3, signal_fraction=0.06, deflection=deflection, deflection_deg_eev=strength,
                           smearing_deg_eev=0.0, resolution_deg=0.0, charges=((charge, 1.0),),
                           multiplicity=multiplicity)
    return params, simulate(params, n_maps, seed=5)


@pytest.mark.parametrize("charge", [1, 2])
def test_unsmeared_street_lies_on_a_great_circle_with_distance_proportional_to_z_over_e(charge):
    params, sim = sharp_streets(charge)
    checked = 0
    for m in np.flatnonzero(sim["label"] == 1)[:20]:
        for s in range(params.n_sources):
            members = sim["data"][m, sim["source_id"][m] == s]
            source = sim["source_direction"][m, s].astype(float)
            vectors = members[:, :3].astype(float)
            # Coplanar with the source and the origin: one great circle.
            singular = np.linalg.svd(np.vstack([source, vectors]), compute_uv=False)
            assert singular[-1] < 1e-5
            # Angle from the source = D Z / E.
            angle = np.degrees(angular_distance(vectors, source))
            energy = energy_from_feature(members[:, 3])
            np.testing.assert_allclose(angle, params.deflection_deg_eev * charge / energy, rtol=1e-4)
            # Energy ordered: the highest energies nearest the source.
            assert np.all(np.diff(angle[np.argsort(-energy)]) >= -1e-9)
            checked += 1
    assert checked == 60


def test_jf12_median_proton_deflection_at_40_eev_is_near_8_degrees():
    directions = isotropic_directions(np.random.default_rng(2), (4000,))
    deflection = np.linalg.norm(JF12Lens().deflection(directions), axis=-1) / 40.0
    assert 7.5 < np.median(deflection) < 8.5
    # The tabulated lens agrees with the direct line-of-sight integral.
    direct = 53.0 * np.linalg.norm(line_of_sight_integral(directions[:200]), axis=-1) / 40.0
    assert np.median(np.abs(deflection[:200] - direct)) < 0.3


def test_jf12_field_vanishes_outside_the_galaxy_and_near_the_centre():
    positions = np.array([[0.0, 0.0, 0.5], [25.0, 0.0, 0.0], [0.0, 0.0, 21.0], [-8.5, 0.0, 0.0]])
    field = jf12_field(positions)
    assert np.all(field[:3] == 0)
    assert 0.5 < np.linalg.norm(field[3]) < 10  # a few muG at the Sun


def test_jf12_streets_follow_the_field():
    params, sim = sharp_streets(deflection="jf12", strength=1.0)
    lens = JF12Lens()
    ratios = []
    for m in np.flatnonzero(sim["label"] == 1)[:20]:
        for s in range(params.n_sources):
            members = sim["data"][m, sim["source_id"][m] == s]
            source = sim["source_direction"][m, s][None].astype(float)
            expected = np.linalg.norm(lens.deflection(source)) / energy_from_feature(members[:, 3])
            angle = np.degrees(angular_distance(members[:, :3].astype(float), source))
            ratios.append(angle[expected < 5] / expected[expected < 5])
    ratios = np.concatenate(ratios)
    assert np.median(np.abs(ratios - 1)) < 0.1  # small deflections: as the field at the source says


def test_auger_exposure_hides_the_far_north():
    sim = simulate("auger", BLOCK_SIZE, seed=2)
    vectors = sim["data"][..., :3].reshape(-1, 3).astype(float)
    assert auger_exposure(vectors).min() > 0
    equatorial = vectors @ EQUATORIAL_TO_GALACTIC  # galactic -> equatorial (the matrix's transpose)
    declination = np.degrees(np.arcsin(np.clip(equatorial[:, 2], -1, 1)))
    assert declination.max() < 44.9  # latitude -35.2 deg + 80 deg zenith
    # Sources anywhere on the sky: those the detector cannot see contribute nothing.
    source = sim["source_direction"][sim["label"] == 1].reshape(-1, 3).astype(float)
    assert np.mean(auger_exposure(source) == 0) > 0.1


def test_same_seed_same_bytes_whatever_the_chunking():
    a = simulate("textbook", 700, seed=9, chunk_size=250)
    b = simulate("textbook", 700, seed=9, chunk_size=5000, processes=2)
    for key in ("data", "label", "source_id"):
        assert a[key].tobytes() == b[key].tobytes()
    first = simulate("textbook", 300, seed=9)
    assert first["data"].tobytes() == a["data"][:300].tobytes()
    other = simulate("textbook", 300, seed=10)
    assert not np.array_equal(other["data"], first["data"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_sources": 0}, "n_sources must be an integer from 1 to 127, got 0"),
        ({"signal_fraction": 1.5}, r"signal_fraction must be in \(0, 1\], got 1.5"),
        ({"signal_fraction": 0.001}, "cannot feed 5 sources"),
        ({"deflection": "galactic"}, "deflection must be 'constant' or 'jf12', got 'galactic'"),
        ({"smearing_deg_eev": -1.0}, "smearing_deg_eev must be a finite number >= 0, got -1.0"),
        ({"charges": ((0, 1.0),)}, r"1 <= Z <= 26"),
        ({"charges": ((1, 0.0),)}, "summing to > 0"),
        ({"emin_eev": 500.0}, r"emin_eev must be in \[4.0, 316\) EeV, got 500.0"),
        ({"exposure": "telescope"}, "exposure must be None or 'auger', got 'telescope'"),
        ({"multiplicity": "binomial"}, "multiplicity must be 'poisson' or 'fixed', got 'binomial'"),
        ({"multiplicity": "fixed", "exposure": "auger"}, "multiplicity 'fixed' needs exposure None"),
        ({"source_flux": "lognormal"}, "source_flux must be 'equal' or 'euclidean', got 'lognormal'"),
    ],
)
def test_bad_parameters_give_clear_errors(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PRESETS["textbook"], **change)


@pytest.mark.parametrize("kwargs, message", [
    ({"params": "unknown"}, "unknown preset 'unknown'"),
    ({"n_maps": 0}, "n_maps must be a positive integer, got 0"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
])
def test_bad_simulate_arguments(kwargs, message):
    arguments = {"params": "textbook", "n_maps": 10, "seed": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        simulate(**arguments)


def test_parameters_round_trip_through_json():
    for params in PRESETS.values():
        assert SkyParameters.from_json(params.to_json()) == params


def test_progress_bar_without_ipywidgets_is_the_text_bar(monkeypatch):
    """Without ipywidgets tqdm.auto warns "IProgress not found" on stderr in a notebook:
    the simulator then uses the plain text bar."""
    import sys

    from crsky.simulate import _progress_bar

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now fails
    bar = _progress_bar(total=1, disable=True)
    assert type(bar).__module__ == "tqdm.std"


def test_default_parameters_are_the_default_preset():
    from crsky import experiment

    assert SkyParameters() == PRESETS["textbook"] == as_parameters(experiment.PRESET)
    assert as_parameters(PRESETS["easy"]) is PRESETS["easy"]
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; choose one of \['auger', 'easy', 'hard', 'jf12', 'textbook'\]"):
        as_parameters("nope")


@pytest.mark.parametrize("latitude_deg, max_zenith_deg", [(-35.2, 80.0), (39.0, 60.0), (0.0, 45.0)])
def test_exposure_is_normalised_to_one_wherever_the_array_stands(latitude_deg, max_zenith_deg):
    vectors = isotropic_directions(np.random.default_rng(5), (200_000,))
    exposure = auger_exposure(vectors, latitude_deg, max_zenith_deg)
    assert exposure.min() >= 0 and 0.999 < exposure.max() <= 1.0 + 1e-9


def test_jf12_magnification_keeps_an_isotropic_sky_isotropic():
    """Liouville: isotropic sources seen through the lens, each weighted by |det J|, give an
    isotropic sky; unweighted (equal counts per source) they do not."""
    rng = np.random.default_rng(7)
    lens = JF12Lens()
    sources = isotropic_directions(rng, (100000,))
    rigidity_inverse = np.full(len(sources), 1 / 40.0)  # protons at 40 EeV
    arrival = lens.deflect(sources, None, rigidity_inverse)
    weight = lens.magnification(sources, None, rigidity_inverse)
    assert abs(weight.mean() - 1) < 0.01  # the lens preserves total area

    def moments(w):
        w = w / w.sum()
        x, y, z = arrival.T
        return np.array([w @ x, w @ y, w @ z, w @ (1.5 * z ** 2 - 0.5), w @ (x ** 2 - y ** 2), w @ (x * y)])

    effective_n = weight.sum() ** 2 / (weight ** 2).sum()
    assert np.max(np.abs(moments(weight))) < 4 / np.sqrt(3 * effective_n)
    assert np.max(np.abs(moments(np.ones(len(sources))))) > 0.04


def test_constant_deflection_has_unit_magnification():
    from crsky.deflection import ConstantDeflection

    assert np.all(ConstantDeflection(300.0).magnification(None, None, np.ones(5)) == 1)


def test_parameters_of_simulator_1_files_still_load():
    """Files of simulator 1.x lack multiplicity (it was fixed) and source_flux."""
    old = json.dumps({k: v for k, v in json.loads(PRESETS["textbook"].to_json()).items()
                      if k not in ("multiplicity", "source_flux")})
    assert SkyParameters.from_json(old).multiplicity == "fixed"


def test_mean_exposure_is_the_fraction_of_an_isotropic_flux_recorded():
    from crsky.sky import mean_exposure

    vectors = isotropic_directions(np.random.default_rng(8), (400_000,))
    assert mean_exposure(auger_exposure) == pytest.approx(auger_exposure(vectors).mean(), abs=3e-3)
    assert mean_exposure(lambda v: np.ones(v.shape[:-1])) == pytest.approx(1.0)
