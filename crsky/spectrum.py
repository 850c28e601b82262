"""Cosmic-ray energies: the Pierre Auger Observatory spectrum (2020) and the energy feature.

Energies are in EeV (10^18 eV). The model input is the normalised energy
``log10(E / eV) / 20.5``, the convention of the textbook's data set.
"""

import numpy as np

# Auger 2020 (Phys. Rev. D 102, 062005): spectral indices and break energies (EeV).
GAMMAS = (3.29, 2.51, 3.05, 5.1)
BREAKS_EEV = (5.0, 13.0, 46.0)
OMEGA = 0.05

EMIN_EEV = 10 ** 19.6 / 1e18  # 39.8 EeV: the textbook's threshold
EMAX_EEV = 10 ** 20.5 / 1e18  # 316 EeV: normalised energy 1.0
ENERGY_SCALE = 20.5


def auger_flux(energy_eev):
    """Unnormalised flux J(E) of the Auger 2020 fit at ``energy_eev``."""
    energy = np.asarray(energy_eev, dtype=float)
    flux = energy ** -GAMMAS[0]
    for i, e_break in enumerate(BREAKS_EEV):
        flux = flux * (1.0 + (energy / e_break) ** (1.0 / OMEGA)) ** ((GAMMAS[i] - GAMMAS[i + 1]) * OMEGA)
    return flux


class EnergySampler:
    """Draws energies (EeV) from the Auger spectrum between ``emin_eev`` and ``emax_eev``
    by inverting its cumulative distribution, tabulated on a fine logarithmic grid."""

    def __init__(self, emin_eev=EMIN_EEV, emax_eev=EMAX_EEV, grid_size=8192):
        if not 0 < emin_eev < emax_eev:
            raise ValueError(f"need 0 < emin_eev < emax_eev, got emin_eev={emin_eev}, emax_eev={emax_eev}.")
        self.emin_eev, self.emax_eev = float(emin_eev), float(emax_eev)
        log_energy = np.linspace(np.log(emin_eev), np.log(emax_eev), grid_size)
        density = auger_flux(np.exp(log_energy)) * np.exp(log_energy)  # dN/dlnE
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(log_energy))])
        self._cdf = cdf / cdf[-1]
        self._log_energy = log_energy

    def __call__(self, rng, shape):
        """Energies in EeV, array of ``shape``."""
        return np.exp(np.interp(rng.random(shape), self._cdf, self._log_energy))


def energy_feature(energy_eev):
    """The normalised energy ``log10(E / eV) / 20.5`` of energies in EeV."""
    return (np.log10(np.asarray(energy_eev, dtype=float)) + 18.0) / ENERGY_SCALE


def energy_from_feature(feature):
    """Energies in EeV from the normalised energy feature."""
    return 10.0 ** (np.asarray(feature, dtype=float) * ENERGY_SCALE - 18.0)
