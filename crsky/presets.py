"""Physics parameters of a simulated data set and the named presets.

A :class:`SkyParameters` says how a data set is simulated (angles in degrees, energies
in EeV); :data:`PRESETS` names the ones the course uses, and :func:`as_parameters` turns
a preset name (or parameters) into parameters: the one place that conversion happens.
"""

import dataclasses
import json

import numpy as np

from crsky.spectrum import EMAX_EEV, EMIN_EEV


@dataclasses.dataclass(frozen=True)
class SkyParameters:
    """Physics parameters of a simulated data set (angles in degrees, energies in EeV).
    The defaults are the course's default preset, ``PRESETS["textbook"]``.

    n_events: cosmic rays per map.
    n_sources: sources per signal map.
    signal_fraction: fraction of a signal map's cosmic rays that come from the sources.
    deflection: "constant" (one street direction per source) or "jf12" (JF12 regular field).
    deflection_deg_eev: D, street length per unit Z / E for "constant" (deg EeV); for
        "jf12" a factor on the field's deflections (1.0 = JF12 as published).
    smearing_deg_eev: S, turbulent-field spread per unit Z / E (deg EeV).
    resolution_deg: detector angular resolution, added in quadrature.
    charges: mixture of nuclear charges as ((Z, weight), ...).
    emin_eev: energy threshold.
    exposure: None (full sky) or "auger" (a ground array at latitude -35.2 deg).
    multiplicity: "poisson" (each source's recorded count is Poisson distributed around
        its share of ``signal_fraction * n_events``) or "fixed" (exactly that many cosmic
        rays per map, shared out by flux; full sky and constant deflection only: it is not
        a physical distribution, and makes counting clusters easy).
    source_flux: "equal" (every source the same flux) or "euclidean" (fluxes S drawn from
        dN/dS ~ S^-5/2, sources of one luminosity spread uniformly in Euclidean space,
        between S_min and 100 S_min; each map's sources share its signal by flux).
    """

    n_events: int = 500
    n_sources: int = 5
    signal_fraction: float = 0.05
    deflection: str = "constant"
    deflection_deg_eev: float = 400.0
    smearing_deg_eev: float = 60.0
    resolution_deg: float = 1.0
    charges: tuple = ((1, 1.0),)
    emin_eev: float = EMIN_EEV
    exposure: str | None = None
    multiplicity: str = "poisson"
    source_flux: str = "equal"

    def __post_init__(self):
        errors = []
        if not isinstance(self.n_events, int) or self.n_events < 2:
            errors.append(f"n_events must be an integer >= 2, got {self.n_events!r}")
        if not isinstance(self.n_sources, int) or not 1 <= self.n_sources <= 127:
            errors.append(f"n_sources must be an integer from 1 to 127, got {self.n_sources!r}")
        if not 0.0 < self.signal_fraction <= 1.0:
            errors.append(f"signal_fraction must be in (0, 1], got {self.signal_fraction!r}")
        elif isinstance(self.n_sources, int) and isinstance(self.n_events, int) \
                and round(self.signal_fraction * self.n_events) < self.n_sources:
            errors.append(
                f"signal_fraction * n_events = {self.signal_fraction * self.n_events:g} cosmic rays "
                f"cannot feed {self.n_sources} sources (at least one each)")
        if self.deflection not in ("constant", "jf12"):
            errors.append(f"deflection must be 'constant' or 'jf12', got {self.deflection!r}")
        for name in ("deflection_deg_eev", "smearing_deg_eev", "resolution_deg"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                errors.append(f"{name} must be a finite number >= 0, got {getattr(self, name)!r}")
        charges = tuple(tuple(c) for c in self.charges)
        if not charges or any(len(c) != 2 or int(c[0]) != c[0] or not 1 <= c[0] <= 26 or c[1] < 0 for c in charges) \
                or sum(c[1] for c in charges) <= 0:
            errors.append(f"charges must be ((Z, weight), ...) with 1 <= Z <= 26 and weights >= 0 "
                          f"summing to > 0, got {self.charges!r}")
        if not EMIN_EEV / 10 <= self.emin_eev < EMAX_EEV:
            errors.append(f"emin_eev must be in [{EMIN_EEV / 10:.1f}, {EMAX_EEV:.0f}) EeV, got {self.emin_eev!r}")
        if self.exposure not in (None, "auger"):
            errors.append(f"exposure must be None or 'auger', got {self.exposure!r}")
        if self.multiplicity not in ("poisson", "fixed"):
            errors.append(f"multiplicity must be 'poisson' or 'fixed', got {self.multiplicity!r}")
        elif self.multiplicity == "fixed" and (self.exposure is not None or self.deflection != "constant"):
            errors.append("multiplicity 'fixed' needs exposure None and deflection 'constant' (an exposure or a "
                          f"lens records a random number of cosmic rays), got exposure {self.exposure!r} and "
                          f"deflection {self.deflection!r}")
        if self.source_flux not in ("equal", "euclidean"):
            errors.append(f"source_flux must be 'equal' or 'euclidean', got {self.source_flux!r}")
        if errors:
            raise ValueError("invalid sky parameters: " + "; ".join(errors) + ".")
        object.__setattr__(self, "charges", tuple((int(z), float(w)) for z, w in charges))

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values["charges"] = tuple(tuple(c) for c in values["charges"])
        values.setdefault("multiplicity", "fixed")  # files of simulator 1.x
        return cls(**values)


PRESETS = {
    # The default: the graph network must clearly beat the pair-count statistic.
    "textbook": SkyParameters(),
    # Few bright sources with short streets: any method finds them.
    "easy": SkyParameters(n_sources=3, signal_fraction=0.06, deflection_deg_eev=160.0, smearing_deg_eev=60.0),
    # Many faint sources of a light mixed composition (half protons, half helium): a source's
    # helium forms a street twice as long as its protons, so no single 1/E ordering holds.
    # Rigidities E/Z stay >= 20 EV, where the small-angle model holds (heavier nuclei at
    # 40 EeV would be deflected by tens of degrees: the lensing regime, not simulated here).
    "hard": SkyParameters(n_sources=10, signal_fraction=0.06, deflection_deg_eev=320.0, smearing_deg_eev=60.0,
                          charges=((1, 0.5), (2, 0.5))),
    # Streets from the JF12 regular field: direction and length vary over the sky.
    "jf12": SkyParameters(n_sources=5, signal_fraction=0.05, deflection="jf12", deflection_deg_eev=1.0,
                          smearing_deg_eev=60.0),
    # As "textbook", seen by a southern ground array (Auger-like exposure).
    "auger": SkyParameters(n_sources=5, signal_fraction=0.05, deflection_deg_eev=400.0, smearing_deg_eev=60.0,
                           exposure="auger"),
}


def as_parameters(preset):
    """The :class:`SkyParameters` of a preset name, or ``preset`` itself if it already is one."""
    if isinstance(preset, SkyParameters):
        return preset
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)} or pass SkyParameters.")
    return PRESETS[preset]
