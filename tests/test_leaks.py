"""No label leaks: per-map statistics that are not street physics (energy moments,
dipole and quadrupole in galactic and equatorial coordinates, row order) do not tell
signal maps from isotropic ones in any preset, and the check does catch a leak."""

import numpy as np
import pytest

from crsky.leakcheck import auc_error, leak_report, map_statistics
from crsky.presets import PRESETS
from crsky.simulate import simulate
from crsky.sky import isotropic_directions

N_MAPS = 8000  # AUC error 0.0065: a leak of AUC 0.53 is caught at 4 sigma


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_statistic_but_the_streets_separates_the_classes(preset):
    sim = simulate(preset, N_MAPS, seed=2024)
    leaks = [(name, round(auc, 3)) for name, auc, _, leaks in leak_report(sim["data"], sim["label"]) if leaks]
    assert not leaks, f"{preset}: {leaks} (AUC error {auc_error(sim['label']):.4f})"


def _isotropic_maps(n, seed=0):
    rng = np.random.default_rng(seed)
    data = np.empty((n, 500, 4))
    data[..., :3] = isotropic_directions(rng, (n, 500))
    data[..., 3] = rng.uniform(0.956, 0.985, (n, 500))
    return data, rng.permutation(np.arange(n) % 2)


@pytest.mark.parametrize("leak, statistic", [
    ("north", "galactic dipole z"),  # signal cosmic rays favour one hemisphere (as an exposure applied twice)
    ("energy", "energy mean"),  # signal cosmic rays slightly more energetic
    ("order", "row order: energy vs row"),  # signal cosmic rays first in the file and more energetic
])
def test_the_check_catches_a_leak(leak, statistic):
    data, label = _isotropic_maps(4000)
    signal = np.flatnonzero(label == 1)
    rng = np.random.default_rng(1)
    if leak == "north":
        data[signal, :25, 2] = np.abs(data[signal, :25, 2])
        data[signal, :25, :3] /= np.linalg.norm(data[signal, :25, :3], axis=-1, keepdims=True)
    else:
        data[signal, :25, 3] += 0.003
    if leak != "order":
        order = np.argsort(rng.random(data.shape[:2]), axis=1)
        data = np.take_along_axis(data, order[..., None], axis=1)
    report = {name: (auc, leaks) for name, auc, _, leaks in leak_report(data, label)}
    assert report[statistic][1], (statistic, report[statistic])


def test_the_check_passes_isotropic_maps():
    data, label = _isotropic_maps(4000, seed=3)
    assert not [name for name, _, _, leaks in leak_report(data, label) if leaks]
    assert set(map_statistics(data[:2])) >= {"energy mean", "equatorial dipole z", "galactic quadrupole zz"}
