"""Directions on the sky: unit vectors, longitude/latitude, random and smeared directions.

Vectors are galactic Cartesian unit vectors ``(..., 3)``: x towards the Galactic
centre, z towards the north Galactic pole. Angles are in radians unless a name says
``_deg``.
"""

import functools

import numpy as np

# Rotation from equatorial (J2000) to galactic unit vectors: g = EQUATORIAL_TO_GALACTIC @ e.
EQUATORIAL_TO_GALACTIC = np.array([
    [-0.0548755604, -0.8734370902, -0.4838350155],
    [+0.4941094279, -0.4448296300, +0.7469822445],
    [-0.8676661490, -0.1980763734, +0.4559837762],
])


def vectors_to_lonlat(vectors):
    """Longitude in (-pi, pi] and latitude in [-pi/2, pi/2] of unit vectors ``(..., 3)``."""
    vectors = np.asarray(vectors, dtype=float)
    lon = np.arctan2(vectors[..., 1], vectors[..., 0])
    lat = np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0))
    return lon, lat


def lonlat_to_vectors(lon, lat):
    """Unit vectors ``(..., 3)`` from longitude and latitude (radians)."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def angular_distance(a, b):
    """Angle (radians) between unit vectors ``a`` and ``b`` (broadcast over ``...``)."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(np.asarray(a) * np.asarray(b), axis=-1)
    return np.arctan2(cross, dot)


def isotropic_directions(rng, shape):
    """Isotropic unit vectors of shape ``shape + (3,)``."""
    vectors = rng.standard_normal(tuple(shape) + (3,))
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def tangent_basis(vectors):
    """Two unit vectors ``(e1, e2)`` orthogonal to each vector and to each other."""
    vectors = np.asarray(vectors, dtype=float)
    helper = np.zeros_like(vectors)
    near_pole = np.abs(vectors[..., 2]) > 0.9
    helper[..., 2] = ~near_pole
    helper[..., 0] = near_pole
    e1 = np.cross(helper, vectors)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e2 = np.cross(vectors, e1)
    return e1, e2


def move_along(vectors, tangents, angles):
    """Move unit vectors along the great circle given by unit ``tangents`` by ``angles`` (rad)."""
    angles = np.asarray(angles, dtype=float)[..., None]
    moved = vectors * np.cos(angles) + tangents * np.sin(angles)
    return moved / np.linalg.norm(moved, axis=-1, keepdims=True)


def fisher_smear(rng, vectors, sigma):
    """Draw directions from von Mises-Fisher distributions around ``vectors`` ``(N, 3)``.

    ``sigma`` (radians, scalar or ``(N,)``) is the angular spread: kappa = 1 / sigma^2.
    A spread of 0 leaves a direction unchanged.
    """
    vectors = np.asarray(vectors, dtype=float)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), vectors.shape[:-1])
    u = rng.random(vectors.shape[:-1])
    azimuth = rng.uniform(0.0, 2.0 * np.pi, vectors.shape[:-1])
    kappa = 1.0 / np.maximum(sigma, 1e-12) ** 2
    cos_alpha = 1.0 + np.log1p(-u * -np.expm1(-2.0 * kappa)) / kappa
    cos_alpha = np.where(sigma > 0, np.clip(cos_alpha, -1.0, 1.0), 1.0)
    sin_alpha = np.sqrt(1.0 - cos_alpha ** 2)
    e1, e2 = tangent_basis(vectors)
    offset = np.cos(azimuth)[..., None] * e1 + np.sin(azimuth)[..., None] * e2
    smeared = vectors * cos_alpha[..., None] + offset * sin_alpha[..., None]
    return smeared / np.linalg.norm(smeared, axis=-1, keepdims=True)


def _sommers_exposure(declination, latitude, max_zenith):
    """Unnormalised exposure (Sommers 2001) at declinations (radians) of a ground array at
    ``latitude`` seeing zenith angles up to ``max_zenith`` (radians)."""
    xi = (np.cos(max_zenith) - np.sin(latitude) * np.sin(declination)) / (np.cos(latitude) * np.cos(declination))
    alpha_m = np.arccos(np.clip(xi, -1.0, 1.0))
    return np.cos(latitude) * np.cos(declination) * np.sin(alpha_m) + alpha_m * np.sin(latitude) * np.sin(declination)


@functools.lru_cache(maxsize=16)
def _sommers_maximum(latitude_deg, max_zenith_deg):
    """The largest exposure over the sky (on a 0.05 deg grid of declinations, poles excluded)."""
    declination = np.radians(np.linspace(-90, 90, 3601)[1:-1])
    return float(np.max(_sommers_exposure(declination, np.radians(latitude_deg), np.radians(max_zenith_deg))))


def auger_exposure(vectors, latitude_deg=-35.2, max_zenith_deg=80.0):
    """Relative exposure (0..1, 1 where it is largest) of a ground array at ``latitude_deg``
    seeing zenith angles up to ``max_zenith_deg`` (Sommers 2001), for galactic unit vectors
    ``(..., 3)``."""
    equatorial = np.asarray(vectors, dtype=float) @ EQUATORIAL_TO_GALACTIC  # = R^T g
    declination = np.arcsin(np.clip(equatorial[..., 2], -1.0, 1.0))
    exposure = _sommers_exposure(declination, np.radians(latitude_deg), np.radians(max_zenith_deg))
    return exposure / _sommers_maximum(float(latitude_deg), float(max_zenith_deg))


def mean_exposure(exposure, samples=200001):
    """Mean of a relative exposure (a function of unit vectors) over the whole sky: the
    fraction of an isotropic flux the detector records. Exposures that depend on
    declination only are integrated over sin(declination) on a fine grid."""
    sin_dec = np.linspace(-1.0, 1.0, samples)
    # Points on the equatorial meridian ra = 0, turned into galactic vectors.
    equatorial = np.stack([np.sqrt(1 - sin_dec ** 2), np.zeros_like(sin_dec), sin_dec], axis=-1)
    values = exposure(equatorial @ EQUATORIAL_TO_GALACTIC.T)
    return float(np.trapezoid(values, sin_dec) / 2.0)


def exposure_weighted_directions(rng, shape, exposure=None):
    """Unit vectors ``shape + (3,)`` distributed as isotropic flux times ``exposure``.

    ``exposure``: None (full sky, uniform) or a function of unit vectors returning values in [0, 1].
    Uses rejection sampling.
    """
    shape = tuple(shape)
    if exposure is None:
        return isotropic_directions(rng, shape)
    total = int(np.prod(shape))
    out = np.empty((total, 3))
    filled = 0
    while filled < total:
        need = total - filled
        candidates = isotropic_directions(rng, (2 * need + 16,))
        keep = candidates[rng.random(len(candidates)) < exposure(candidates)][:need]
        out[filled:filled + len(keep)] = keep
        filled += len(keep)
    return out.reshape(shape + (3,))
