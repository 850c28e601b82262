"""Label-leak checks: per-map statistics that are not street physics must not tell the classes apart.

A signal map differs from an isotropic one by its streets: small-scale clustering of
cosmic rays, ordered by energy. Anything else that separates the classes is a flaw of
the simulation that a network (or a student) could learn instead of the physics: the
energy distribution, the large-scale distribution over the sky (dipole and quadrupole,
in galactic and in equatorial coordinates, where a detector's exposure would act), or
the order of the cosmic rays in the file.

For each such statistic, :func:`leak_report` gives the ROC AUC of "signal" against
"isotropic" and its statistical error under no separation (Mann-Whitney:
sqrt((n0 + n1 + 1) / (12 n0 n1))); a statistic leaks if its AUC is more than
``n_sigma`` errors from 0.5. The statistics are all symmetric under the null (their
distributions may widen with clustering, but not shift), so only a shift counts.

    python -m bench.leaks            # every preset of this simulator
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from crsky.sky import EQUATORIAL_TO_GALACTIC


def _correlation_with_row(values):
    """Pearson correlation of each map's values ``(n, P)`` with the row index 0..P-1."""
    index = np.arange(values.shape[1], dtype=float)
    index = (index - index.mean()) / index.std()
    centred = values - values.mean(axis=1, keepdims=True)
    return (centred * index).mean(axis=1) / np.maximum(centred.std(axis=1), 1e-12)


def map_statistics(x):
    """Per-map statistics that are not street physics, for maps ``(n, P, 4)`` (x, y, z
    galactic unit vectors, normalised energy). Returns ``{name: (n,) array}``."""
    x = np.asarray(x, dtype=np.float64)
    galactic, energy = x[..., :3], x[..., 3]
    equatorial = galactic @ EQUATORIAL_TO_GALACTIC  # e = R^T g, as row vectors
    stats = {
        "energy mean": energy.mean(axis=1), "energy std": energy.std(axis=1),
        "energy min": energy.min(axis=1), "energy max": energy.max(axis=1),
    }
    for frame, v in (("galactic", galactic), ("equatorial", equatorial)):
        for k, axis in enumerate("xyz"):
            stats[f"{frame} dipole {axis}"] = v[..., k].mean(axis=1)
        vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
        stats[f"{frame} quadrupole zz"] = (1.5 * vz ** 2 - 0.5).mean(axis=1)
        stats[f"{frame} quadrupole xx-yy"] = (vx ** 2 - vy ** 2).mean(axis=1)
        stats[f"{frame} quadrupole xy"] = (vx * vy).mean(axis=1)
        stats[f"{frame} quadrupole xz"] = (vx * vz).mean(axis=1)
        stats[f"{frame} quadrupole yz"] = (vy * vz).mean(axis=1)
    n_half = x.shape[1] // 2
    stats["row order: energy vs row"] = _correlation_with_row(energy)
    stats["row order: z vs row"] = _correlation_with_row(galactic[..., 2])
    stats["row order: energy, first half - second half"] = energy[:, :n_half].mean(1) - energy[:, n_half:].mean(1)
    stats["row order: first row's energy"] = energy[:, 0]
    stats["row order: first row's z"] = galactic[:, 0, 2]
    return stats


def auc_error(label):
    """Standard error of the ROC AUC under no separation for these labels."""
    label = np.asarray(label)
    n1 = int(np.sum(label == 1))
    n0 = len(label) - n1
    return float(np.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)))


def leak_report(x, label, n_sigma=4.0):
    """``[(statistic, auc, error, leaks)]`` for every statistic of :func:`map_statistics`;
    ``leaks`` when |auc - 0.5| > ``n_sigma`` errors."""
    error = auc_error(label)
    report = []
    for name, values in map_statistics(x).items():
        auc = float(roc_auc_score(label, values))
        report.append((name, auc, error, abs(auc - 0.5) > n_sigma * error))
    return report
