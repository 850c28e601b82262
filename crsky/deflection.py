"""Deflection of cosmic rays in the galactic magnetic field (small-angle approximation).

A cosmic ray of charge Z and energy E from a source in direction ``s`` arrives from
``s + (Z / E) * delta(n)``: its direction is turned along the sky by the field
integral along the line of sight n,

    delta = 53 deg * (integral of n x B dl / (muG kpc)) / (E / EeV) per unit charge.

Two models: a constant street direction per source (:class:`ConstantDeflection`),
and the line-of-sight integral through the JF12 regular field
(:func:`jf12_field`, :class:`JF12Lens`), whose direction and strength vary over the sky.
"""

import functools

import numpy as np

from crsky.sky import lonlat_to_vectors, move_along, tangent_basis

DEG_PER_MUG_KPC_PER_EEV = 53.0  # deflection of a proton of 1 EeV per muG kpc, degrees
SUN_DISTANCE_KPC = 8.5

# Jansson & Farrar 2012 (ApJ 757:14), regular field; as in CRPropa's JF12Field.
JF12 = dict(
    pitch_deg=11.5,
    arm_radii_kpc=(5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7, 15.5),  # arm boundaries on the -x axis
    arm_field_mug=(0.1, 3.0, -0.9, -0.8, -2.0, -4.2, 0.0, 2.7),  # at r = 5 kpc, falling as 1/r
    ring_field_mug=0.1, disk_height_kpc=0.40, disk_width_kpc=0.27,
    north_field_mug=1.4, south_field_mug=-1.1, north_radius_kpc=9.22, south_radius_kpc=16.7,
    halo_width_kpc=0.20, halo_scale_height_kpc=5.3,
    x_field_mug=4.6, x_elevation_deg=49.0, x_critical_radius_kpc=4.8, x_scale_radius_kpc=2.9,
    inner_radius_kpc=1.0, outer_radius_kpc=20.0,
)


def _logistic(x, x0, width):
    return 1.0 / (1.0 + np.exp(-2.0 * (np.abs(x) - x0) / width))


def jf12_field(positions):
    """JF12 regular field (muG) at galactocentric positions ``(..., 3)`` in kpc.

    Frame: the Sun at (-8.5, 0, 0) kpc, z towards the north Galactic pole.
    Disk (8 logarithmic spiral arms and a molecular ring), toroidal halo and X-field.
    """
    p = JF12
    x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
    r = np.hypot(x, y)
    distance = np.sqrt(r ** 2 + z ** 2)
    phi = np.arctan2(y, x)
    sin_phi, cos_phi = np.sin(phi), np.cos(phi)
    field = np.zeros(positions.shape)
    disk_profile = _logistic(z, p["disk_height_kpc"], p["disk_width_kpc"])

    # Disk: molecular ring for 3 < r < 5 kpc, spiral arms beyond.
    pitch = np.radians(p["pitch_deg"])
    tan_90_minus_pitch = np.tan(np.pi / 2 - pitch)
    radii = np.asarray(p["arm_radii_kpc"])
    r_safe = np.maximum(r, 1e-9)
    r_negx = r_safe * np.exp(-(phi - np.pi) / tan_90_minus_pitch)
    r_negx = np.where(r_negx > radii[-1], r_safe * np.exp(-(phi + np.pi) / tan_90_minus_pitch), r_negx)
    r_negx = np.where(r_negx > radii[-1], r_safe * np.exp(-(phi + 3 * np.pi) / tan_90_minus_pitch), r_negx)
    arm = np.clip(np.searchsorted(radii, r_negx, side="right"), 0, len(radii) - 1)
    arm_field = np.asarray(p["arm_field_mug"])[arm] * 5.0 / r_safe
    in_ring = (r > 3.0) & (r < 5.0)
    in_arms = r >= 5.0
    arm_strength = np.where(in_arms, arm_field, 0.0) * (1.0 - disk_profile)
    ring_strength = np.where(in_ring, p["ring_field_mug"], 0.0) * (1.0 - disk_profile)
    sin_pitch, cos_pitch = np.sin(pitch), np.cos(pitch)
    field[..., 0] += arm_strength * (sin_pitch * cos_phi - cos_pitch * sin_phi) - ring_strength * sin_phi
    field[..., 1] += arm_strength * (sin_pitch * sin_phi + cos_pitch * cos_phi) + ring_strength * cos_phi

    # Toroidal halo.
    halo = np.exp(-np.abs(z) / p["halo_scale_height_kpc"]) * disk_profile
    north = p["north_field_mug"] * (1.0 - _logistic(r, p["north_radius_kpc"], p["halo_width_kpc"]))
    south = p["south_field_mug"] * (1.0 - _logistic(r, p["south_radius_kpc"], p["halo_width_kpc"]))
    halo = halo * np.where(z >= 0, north, south)
    field[..., 0] += -halo * sin_phi
    field[..., 1] += halo * cos_phi

    # X-field: poloidal, varying elevation inside r_c, constant elevation outside.
    elevation0 = np.radians(p["x_elevation_deg"])
    r_xc, r_x = p["x_critical_radius_kpc"], p["x_scale_radius_kpc"]
    abs_z = np.abs(z)
    r_c = r_xc + abs_z / np.tan(elevation0)
    inner = r < r_c
    r_p = np.where(inner, r * r_xc / r_c, r - abs_z / np.tan(elevation0))
    strength = np.where(
        inner,
        p["x_field_mug"] * np.exp(-r_p / r_x) * (r_xc / r_c) ** 2,
        p["x_field_mug"] * np.exp(-r_p / r_x) * r_p / r_safe,
    )
    elevation = np.where(inner, np.where(abs_z > 0, np.arctan2(abs_z, r - r_p), np.pi / 2), elevation0)
    z_sign = np.where(z < 0, -1.0, 1.0)
    field[..., 0] += strength * z_sign * np.cos(elevation) * cos_phi
    field[..., 1] += strength * z_sign * np.cos(elevation) * sin_phi
    field[..., 2] += strength * np.sin(elevation)

    outside = (distance < p["inner_radius_kpc"]) | (distance > p["outer_radius_kpc"])
    field[outside] = 0.0
    return field


def line_of_sight_integral(directions, steps=600):
    """Integral of ``n x B dl`` (muG kpc) from the Sun outwards to 20 kpc along unit
    vectors ``directions`` ``(N, 3)`` (galactic frame). Midpoint rule, ``steps`` steps."""
    directions = np.asarray(directions, dtype=float)
    sun = np.array([-SUN_DISTANCE_KPC, 0.0, 0.0])
    outer = JF12["outer_radius_kpc"]
    # Path length to the sphere |sun + s n| = outer.
    b = directions @ sun
    length = -b + np.sqrt(b ** 2 - (sun @ sun - outer ** 2))
    total = np.zeros_like(directions)
    for i in range(steps):
        s = (i + 0.5) / steps * length
        field = jf12_field(sun + s[:, None] * directions)
        total += np.cross(directions, field) * (length / steps)[:, None]
    return total


class ConstantDeflection:
    """Streets along a fixed great circle per source: a cosmic ray of charge Z and energy
    E (EeV) lands ``strength_deg_eev * Z / E`` degrees from its source, along a direction
    drawn at random for each source."""

    def __init__(self, strength_deg_eev):
        if strength_deg_eev < 0:
            raise ValueError(f"the deflection strength must be >= 0 deg EeV, got {strength_deg_eev}.")
        self.strength_deg_eev = float(strength_deg_eev)

    def street_directions(self, rng, sources):
        """A random unit tangent vector at each source ``(..., 3)``."""
        e1, e2 = tangent_basis(sources)
        angle = rng.uniform(0.0, 2.0 * np.pi, sources.shape[:-1])[..., None]
        return np.cos(angle) * e1 + np.sin(angle) * e2

    def deflect(self, sources, streets, rigidity_inverse):
        """Arrival directions ``(N, 3)`` for sources ``(N, 3)``, street tangents ``(N, 3)``
        and Z / E in 1/EeV ``(N,)``."""
        return move_along(sources, streets, np.radians(self.strength_deg_eev * rigidity_inverse))

    def magnification(self, sources, streets, rigidity_inverse):
        """Flux factor of each source (see :meth:`JF12Lens.magnification`): 1, since a
        random street direction per source moves an isotropic population of sources to
        an isotropic population of arrival directions."""
        return np.ones(np.shape(rigidity_inverse))


class JF12Lens:
    """Deflections through the JF12 regular field: the line-of-sight integral tabulated
    on a longitude/latitude grid, interpolated bilinearly, followed in ``substeps`` steps
    so that long streets curve as the field direction changes over the sky."""

    def __init__(self, scale=1.0, substeps=4):
        self.scale = float(scale)
        self.substeps = int(substeps)
        self.lon, self.lat, self.table = _jf12_table()

    def deflection(self, directions):
        """Deflection vector (degrees per 1/EeV, tangent to the sky) at unit vectors ``(N, 3)``."""
        lon = np.arctan2(directions[:, 1], directions[:, 0])
        lat = np.arcsin(np.clip(directions[:, 2], -1.0, 1.0))
        step_lon, step_lat = self.lon[1] - self.lon[0], self.lat[1] - self.lat[0]
        fi = (lon - self.lon[0]) / step_lon
        fj = np.clip((lat - self.lat[0]) / step_lat, 0, len(self.lat) - 1.000001)
        i0 = np.floor(fi).astype(int)
        j0 = np.floor(fj).astype(int)
        wi, wj = (fi - i0)[:, None], (fj - j0)[:, None]
        n_lon = len(self.lon) - 1  # the last column repeats the first
        i0 %= n_lon
        i1 = i0 + 1
        value = ((1 - wi) * (1 - wj) * self.table[i0, j0] + wi * (1 - wj) * self.table[i1, j0]
                 + (1 - wi) * wj * self.table[i0, j0 + 1] + wi * wj * self.table[i1, j0 + 1])
        value -= np.sum(value * directions, axis=-1, keepdims=True) * directions  # tangent
        return self.scale * value

    def street_directions(self, rng, sources):
        return None  # the field sets the direction

    def deflect(self, sources, streets, rigidity_inverse):
        position = np.asarray(sources, dtype=float)
        for _ in range(self.substeps):
            delta = self.deflection(position) * (rigidity_inverse / self.substeps)[:, None]
            angle = np.linalg.norm(delta, axis=-1)
            tangent = delta / np.maximum(angle, 1e-300)[:, None]
            position = move_along(position, tangent, np.radians(angle))
        return position

    def magnification(self, sources, streets, rigidity_inverse, step_deg=0.5):
        """Flux factor |det J| of the lens at each source for its Z / E, where J is the
        Jacobian of the map source direction -> arrival direction (finite differences over
        ``step_deg``).

        By Liouville's theorem an isotropic flux stays isotropic through a magnetic field,
        so a source whose neighbourhood the field spreads over a larger patch of sky
        (|det J| > 1) is seen brighter, and one whose neighbourhood it compresses, fainter
        (as the magnification of a gravitational lens). Weighting each cosmic ray by |det J|
        makes an isotropic population of sources give an isotropic sky; equal counts per
        source would not. Over the whole sky |det J| averages to 1 (the map preserves total
        area): 0.999 for protons at 40 EeV, with 1 %/99 % quantiles 0.24/3.2.
        """
        sources = np.asarray(sources, dtype=float)
        step = np.radians(step_deg)
        e1, e2 = tangent_basis(sources)
        a0 = self.deflect(sources, streets, rigidity_inverse)
        a1 = self.deflect(move_along(sources, e1, np.full(len(sources), step)), streets, rigidity_inverse)
        a2 = self.deflect(move_along(sources, e2, np.full(len(sources), step)), streets, rigidity_inverse)
        return np.abs(np.einsum("ij,ij->i", np.cross(a1 - a0, a2 - a0), a0)) / step ** 2


@functools.lru_cache(maxsize=1)
def _jf12_table(step_deg=2.0):
    """Deflection (deg per 1/EeV) on a lon/lat grid: arrays lon (n_lon + 1), lat, table (n_lon + 1, n_lat, 3)."""
    lon = np.radians(np.arange(-180.0, 180.0 + step_deg / 2, step_deg))
    lat = np.radians(np.arange(-90.0, 90.0 + step_deg / 2, step_deg))
    grid_lon, grid_lat = np.meshgrid(lon[:-1], lat, indexing="ij")
    directions = lonlat_to_vectors(grid_lon, grid_lat).reshape(-1, 3)
    table = DEG_PER_MUG_KPC_PER_EEV * line_of_sight_integral(directions)
    table = table.reshape(len(lon) - 1, len(lat), 3)
    return lon, lat, np.concatenate([table, table[:1]], axis=0)
