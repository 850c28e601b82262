"""Classical baselines: statistics of close cosmic-ray pairs and multiplets.

- :func:`pair_counts`: the number of cosmic-ray pairs closer than an angle psi. Streets
  and clusters add close pairs; an isotropic map of 500 cosmic rays has on average
  C(500, 2) (1 - cos psi) / 2 of them (152, 342 and 948 for 4, 6 and 10 deg).
- :func:`multiplet_counts`: for each angle from 2 to 10 deg, how many cosmic rays of a
  map have 0, 1, ..., 6 or more neighbours within it: the shape of the distribution of
  cluster sizes, not only the number of pairs.
- :func:`energy_pair_counts`: pairs in bins of angle and of the difference of their
  inverse energies |40 EeV/E_i - 40 EeV/E_j|. Two cosmic rays of one street lie
  D |1/E_i - 1/E_j| apart (plus smearing), so street pairs fill a wedge of this plane
  that background pairs do not favour.
- :func:`multiplet_correlations`: the Pierre Auger Collaboration's multiplet idea
  (Astropart. Phys. 35 (2012) 354): around each cosmic ray, the correlation between the
  position of its neighbours along their principal axis and 1/E.

The last three are fed to a logistic regression (standardised features, fitted on
training maps only): :func:`evaluate_classical` with ``"multiplet"`` (energy-blind) or
``"energy"`` (all three). They ignore or use the energies respectively; the pair count
ignores them too.

Command line (psi and threshold, or the regression, fitted on the file's training
split, scored on its test split)::

    python -m crsky.baseline data/sky.npz
"""

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

DEFAULT_PSI_DEG = (4.0, 6.0, 10.0)
MULTIPLET_ANGLES_DEG = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
MAX_NEIGHBOURS = 6  # the last class of multiplet_counts is "6 or more"
ENERGY_PAIR_ANGLE_EDGES_DEG = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0)
INVERSE_ENERGY_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.01)  # |40 EeV/E_i - 40 EeV/E_j|
CORRELATION_RADII_DEG = (5.0, 8.0, 12.0)
CORRELATION_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.01)
CORRELATION_SIZES = (3, 4, 6)  # members (the centre included): at least 3, 4-5, 6 or more
REFERENCE_ENERGY_EEV = 40.0
CLASSICAL_METHODS = ("multiplet", "energy")
# What evaluate_baselines returns, in words (tables and plots).
BASELINE_LABELS = {"pair_count": "pair count", "multiplet": "multiplet counts", "energy": "energy-aware statistic"}


def pair_counts(x, psi_deg, chunk_size=256):
    """Pairs of cosmic rays closer than each angle in ``psi_deg`` (degrees).

    Args:
        x: maps ``(n, P, 3+)``, columns 0-2 unit vectors.
        psi_deg: one angle or a sequence of angles.

    Returns:
        int array ``(n,)`` for one angle, ``(n, len(psi_deg))`` for a sequence.
    """
    psi = np.atleast_1d(np.asarray(psi_deg, dtype=float))
    cos_psi = np.cos(np.radians(psi))
    x = np.asarray(x)
    counts = np.empty((len(x), len(psi)), dtype=np.int64)
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size, :, :3]
        m, _, _, cosine = close_pairs(chunk, psi.max())
        for k, c in enumerate(cos_psi):
            counts[start:start + len(chunk), k] = np.bincount(m[cosine > c], minlength=len(chunk))
    return counts[:, 0] if np.ndim(psi_deg) == 0 else counts


def inverse_energy(x):
    """40 EeV / E of maps ``(n, P, 4)`` (column 3: the normalised energy log10(E/eV)/20.5)."""
    from crsky.spectrum import energy_from_feature

    return REFERENCE_ENERGY_EEV / energy_from_feature(np.asarray(x)[..., 3])


def close_pairs(vectors, max_angle_deg):
    """All pairs ``i < j`` of each map closer than ``max_angle_deg``, found with a k-d tree
    per map (0.2 ms for 500 cosmic rays; no 500 x 500 matrix is formed).

    Args:
        vectors: ``(n, P, 3)`` unit vectors.

    Returns:
        ``(map, i, j, cosine)``: four flat arrays, one entry per pair, ordered by map.
    """
    from scipy.spatial import cKDTree

    vectors = np.asarray(vectors, dtype=np.float64)
    chord = 2.0 * np.sin(np.radians(max_angle_deg) / 2.0)
    pairs = [cKDTree(v).query_pairs(chord, output_type="ndarray") for v in vectors]
    m = np.repeat(np.arange(len(vectors)), [len(p) for p in pairs])
    ij = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    i, j = np.minimum(ij[:, 0], ij[:, 1]), np.maximum(ij[:, 0], ij[:, 1])
    cosine = np.einsum("kc,kc->k", vectors[m, i], vectors[m, j])
    return m, i, j, cosine


def _angles_deg(cosine):
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def multiplet_counts(x, angles_deg=MULTIPLET_ANGLES_DEG, max_neighbours=MAX_NEIGHBOURS, chunk_size=128, pairs=None):
    """For each angle, how many cosmic rays of a map have 0, 1, ..., ``max_neighbours`` or
    more neighbours within it. ``pairs``: optional :func:`close_pairs` of all of ``x``
    (at least up to the largest angle), to share one search among several statistics.

    Returns:
        int array ``(n, len(angles_deg), max_neighbours + 1)``; each row sums to P.
    """
    x = np.asarray(x)
    n_maps, n_points = x.shape[:2]
    chunk_size = n_maps if pairs is not None else chunk_size
    angles = np.asarray(angles_deg, dtype=float)
    n_angles, n_classes = len(angles), max_neighbours + 1
    out = np.zeros((n_maps, n_angles, n_classes), dtype=np.int64)
    for start in range(0, n_maps, chunk_size):
        vectors = x[start:start + chunk_size, :, :3]
        size = len(vectors)
        m, i, j, cosine = pairs if pairs is not None else close_pairs(vectors, angles.max())
        # The first angle index at which each pair counts (angles sorted ascending).
        first = np.searchsorted(angles, _angles_deg(cosine), side="left")
        ends = np.concatenate([m * n_points + i, m * n_points + j]) * (n_angles + 1) + np.concatenate([first, first])
        per_point = np.bincount(ends, minlength=size * n_points * (n_angles + 1)).reshape(-1, n_angles + 1)
        neighbours = np.cumsum(per_point[:, :n_angles], axis=1)  # within angle k
        classes = np.minimum(neighbours, max_neighbours).reshape(size, n_points, n_angles)
        index = (np.arange(size)[:, None, None] * n_angles + np.arange(n_angles)[None, None, :]) * n_classes + classes
        out[start:start + size] = np.bincount(index.reshape(-1), minlength=size * n_angles * n_classes).reshape(
            size, n_angles, n_classes)
    return out


def energy_pair_counts(x, angle_edges_deg=ENERGY_PAIR_ANGLE_EDGES_DEG, inverse_energy_edges=INVERSE_ENERGY_EDGES,
                       chunk_size=128, pairs=None):
    """Pairs of each map in bins of angle and of |40 EeV/E_i - 40 EeV/E_j|. ``pairs``: as
    for :func:`multiplet_counts`.

    Returns:
        int array ``(n, len(angle_edges) - 1, len(inverse_energy_edges) - 1)``.
    """
    x = np.asarray(x)
    chunk_size = len(x) if pairs is not None else chunk_size
    angle_edges, u_edges = np.asarray(angle_edges_deg, float), np.asarray(inverse_energy_edges, float)
    n_a, n_u = len(angle_edges) - 1, len(u_edges) - 1
    out = np.zeros((len(x), n_a, n_u), dtype=np.int64)
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size]
        u = inverse_energy(chunk)
        m, i, j, cosine = pairs if pairs is not None else close_pairs(chunk[..., :3], angle_edges[-1])
        a = np.searchsorted(angle_edges, _angles_deg(cosine), side="right") - 1
        b = np.searchsorted(u_edges, np.abs(u[m, i] - u[m, j]), side="right") - 1
        inside = (a >= 0) & (a < n_a) & (b >= 0) & (b < n_u)
        index = (m[inside] * n_a + a[inside]) * n_u + b[inside]
        out[start:start + len(chunk)] = np.bincount(index, minlength=len(chunk) * n_a * n_u).reshape(-1, n_a, n_u)
    return out


def multiplet_correlations(x, radii_deg=CORRELATION_RADII_DEG, correlation_edges=CORRELATION_EDGES,
                           sizes=CORRELATION_SIZES, chunk_size=128, pairs=None):
    """Energy ordering of the neighbourhood of every cosmic ray (the Auger multiplet idea).

    For each cosmic ray c and radius R: its neighbours within R and c itself form a
    multiplet; their positions in the plane tangent to the sky at c are projected onto
    the multiplet's principal axis (its longest extent), and correlated with 40 EeV/E.
    A street gives |correlation| near 1 (positions linear in 1/E), chance groupings
    spread over 0..1.

    Returns:
        int array ``(n, len(radii), len(sizes), len(correlation_edges) - 1)``: how many
        cosmic rays of each map have a multiplet with that many members (``sizes[k]`` up to
        the next size) and |correlation| in each bin. ``pairs``: as for :func:`multiplet_counts`.
    """
    x = np.asarray(x)
    n_maps, n_points = x.shape[:2]
    chunk_size = n_maps if pairs is not None else chunk_size
    edges, sizes = np.asarray(correlation_edges, float), np.asarray(sizes)
    n_r, n_s, n_c = len(radii_deg), len(sizes), len(edges) - 1
    out = np.zeros((n_maps, n_r, n_s, n_c), dtype=np.int64)
    for start in range(0, n_maps, chunk_size):
        chunk = x[start:start + chunk_size]
        size = len(chunk)
        count, correlation = neighbourhood_correlations(chunk, radii_deg, pairs=pairs)
        map_of = np.repeat(np.arange(size), n_points)
        for r in range(n_r):
            size_class = np.searchsorted(sizes, count[:, :, r].reshape(-1), side="right") - 1
            corr_class = np.clip(np.searchsorted(edges, correlation[:, :, r].reshape(-1), side="right") - 1, 0, n_c - 1)
            valid = size_class >= 0
            index = (map_of[valid] * n_s + size_class[valid]) * n_c + corr_class[valid]
            out[start:start + size, r] = np.bincount(index, minlength=size * n_s * n_c).reshape(size, n_s, n_c)
    return out


def neighbourhood_correlations(x, radii_deg=CORRELATION_RADII_DEG, pairs=None):
    """Around every cosmic ray c and for each radius R, the multiplet of c and its
    neighbours within R: how many members it has and how well their positions along its
    principal axis (in the plane tangent to the sky at c) follow 40 EeV/E.

    Args:
        x: maps ``(n, P, 4)``.
        radii_deg: radii R (degrees).
        pairs: optional :func:`close_pairs` of ``x`` up to at least ``max(radii_deg)``.

    Returns:
        ``(count, correlation)``, float arrays ``(n, P, len(radii_deg))``: the members (c
        included, so at least 1) and |correlation| in [0, 1] (0 where undefined, e.g. a
        multiplet of one).
    """
    from crsky.sky import tangent_basis

    x = np.asarray(x)
    n_maps, n_points = x.shape[:2]
    vectors = x[..., :3].astype(float)
    u = inverse_energy(x)
    m, i, j, cosine = pairs if pairs is not None else close_pairs(vectors, max(radii_deg))
    angle = _angles_deg(cosine)
    # Both directions: centre c, member q.
    centre = np.concatenate([m * n_points + i, m * n_points + j])
    member = np.concatenate([m * n_points + j, m * n_points + i])
    member_angle = np.concatenate([angle, angle])
    flat_vectors = vectors.reshape(-1, 3)
    flat_u = u.reshape(-1)
    e1, e2 = tangent_basis(flat_vectors)
    p1 = np.einsum("ij,ij->i", flat_vectors[member], e1[centre])
    p2 = np.einsum("ij,ij->i", flat_vectors[member], e2[centre])
    total = n_maps * n_points
    counts = np.empty((total, len(radii_deg)))
    correlations = np.empty((total, len(radii_deg)))
    for r, radius in enumerate(radii_deg):
        inside = member_angle < radius
        c, q1, q2, uq = centre[inside], p1[inside], p2[inside], flat_u[member[inside]]

        def sums(weights):  # the centre itself sits at (0, 0) with its own 1/E
            return np.bincount(c, weights=weights, minlength=total)

        count = sums(None) + 1.0
        s1, s2 = sums(q1), sums(q2)
        su = sums(uq) + flat_u
        s11, s22, s12 = sums(q1 * q1), sums(q2 * q2), sums(q1 * q2)
        s1u, s2u = sums(q1 * uq), sums(q2 * uq)
        suu = sums(uq * uq) + flat_u ** 2
        mean1, mean2, meanu = s1 / count, s2 / count, su / count
        c11, c22, c12 = s11 / count - mean1 ** 2, s22 / count - mean2 ** 2, s12 / count - mean1 * mean2
        c1u, c2u, cuu = s1u / count - mean1 * meanu, s2u / count - mean2 * meanu, suu / count - meanu ** 2
        # Principal axis of the 2 x 2 position covariance.
        theta = 0.5 * np.arctan2(2 * c12, c11 - c22)
        a1, a2 = np.cos(theta), np.sin(theta)
        var_axis = a1 * a1 * c11 + 2 * a1 * a2 * c12 + a2 * a2 * c22
        cov_axis = a1 * c1u + a2 * c2u
        correlation = np.abs(cov_axis) / np.sqrt(np.maximum(var_axis * cuu, 1e-300))
        counts[:, r] = count
        correlations[:, r] = np.where((var_axis > 0) & (cuu > 0), np.minimum(correlation, 1.0), 0.0)
    shape = (n_maps, n_points, len(radii_deg))
    return counts.reshape(shape), correlations.reshape(shape)


def classical_features(x, method="energy", chunk_size=128):
    """Per-map features of a classical method: ``"multiplet"`` (multiplet counts, energy-blind)
    or ``"energy"`` (multiplet counts, energy pair counts and multiplet correlations).
    One pair search per chunk of maps serves all statistics."""
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"method must be one of {CLASSICAL_METHODS}, got {method!r}.")
    x = np.asarray(x)
    largest = max(MULTIPLET_ANGLES_DEG) if method == "multiplet" else max(
        max(MULTIPLET_ANGLES_DEG), ENERGY_PAIR_ANGLE_EDGES_DEG[-1], max(CORRELATION_RADII_DEG))
    out = []
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size]
        n = len(chunk)
        pairs = close_pairs(chunk[..., :3], largest)
        features = [multiplet_counts(chunk, pairs=pairs).reshape(n, -1)]
        if method == "energy":
            features += [energy_pair_counts(chunk, pairs=pairs).reshape(n, -1),
                         multiplet_correlations(chunk, pairs=pairs).reshape(n, -1)]
        out.append(np.concatenate(features, axis=1))
    return np.concatenate(out).astype(np.float64)


def fit_classifier(features, label, c=1.0):
    """A logistic regression on standardised features (scikit-learn pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    return model.fit(features, label)


def evaluate_classical(x_train, y_train, x_test, y_test, method="energy", c=1.0, features=None):
    """Fit the logistic regression of ``method`` on the training maps, score the test maps.

    ``features``: optional precomputed ``(train_features, test_features)``.
    Returns a dict: ``method``, ``auc``, ``accuracy`` (probability > 0.5), ``scores`` (test
    signal probabilities), ``predicted`` (the class of each test map, 1: signal) and the
    fitted ``model``.
    """
    if features is None:
        features = classical_features(x_train, method), classical_features(x_test, method)
    model = fit_classifier(features[0], np.asarray(y_train), c)
    scores = model.predict_proba(features[1])[:, 1]
    y_test = np.asarray(y_test)
    return {"method": method, "auc": float(roc_auc_score(y_test, scores)),
            "accuracy": float(np.mean((scores > 0.5) == y_test)), "scores": scores,
            "predicted": (scores > 0.5).astype(int), "model": model}


def evaluate_baselines(x_train, y_train, x_test, y_test, psi_deg=(2.0, 4.0, 6.0, 10.0)):
    """Every classical baseline on the same test maps: ``{"pair_count", "multiplet",
    "energy"}`` -> result dict (see :func:`evaluate_pair_count`, :func:`evaluate_classical`).
    The features are computed once: the energy method's include the multiplet counts."""
    results = {"pair_count": evaluate_pair_count(x_train, y_train, x_test, y_test, psi_deg)}
    train, test = classical_features(x_train, "energy"), classical_features(x_test, "energy")
    n_multiplet = len(MULTIPLET_ANGLES_DEG) * (MAX_NEIGHBOURS + 1)
    results["multiplet"] = evaluate_classical(x_train, y_train, x_test, y_test, "multiplet",
                                              features=(train[:, :n_multiplet], test[:, :n_multiplet]))
    results["energy"] = evaluate_classical(x_train, y_train, x_test, y_test, "energy", features=(train, test))
    return results


MEMBER_RADII_DEG = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)


def member_features(x, radii_deg=MEMBER_RADII_DEG, chunk_size=128):
    """Per-cosmic-ray features of the classical member baseline, ``(n, P, 3 R + 1)`` for R radii.

    For each radius (degrees): log(1 + neighbours within it), the |correlation| between
    position along the neighbourhood's principal axis and 40 EeV/E
    (:func:`neighbourhood_correlations`) and their product (a correlation counts more in
    a crowded neighbourhood); last the cosmic ray's own 40 EeV/E (low energies are
    smeared and deflected most). No other map's cosmic rays and no truth enter.
    """
    x = np.asarray(x)
    out = []
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size]
        count, correlation = neighbourhood_correlations(chunk, radii_deg)
        crowd = np.log(count)  # count includes the cosmic ray itself: log(1 + neighbours)
        out.append(np.concatenate([crowd, correlation, crowd * correlation, inverse_energy(chunk)[..., None]],
                                  axis=-1))
    return np.concatenate(out).astype(np.float64)


def fit_member_baseline(x, targets, c=1.0, max_maps=2_000):
    """The classical member baseline: a logistic regression (standardised features) of the
    targets ``(n, P)`` (1 source member, 0 background; see :func:`crsky.members.member_targets`)
    on :func:`member_features` of maps ``x`` ``(n, P, 4)``, fitted on at most the first
    ``max_maps`` maps. Returns the fitted scikit-learn pipeline; score with :func:`member_baseline_scores`."""
    x, targets = np.asarray(x)[:max_maps], np.asarray(targets)[:max_maps]
    features = member_features(x)
    return fit_classifier(features.reshape(-1, features.shape[-1]), targets.reshape(-1) > 0.5, c)


def member_baseline_scores(model, x):
    """Member probability of every cosmic ray of maps ``x`` ``(n, P, 4)`` under the fitted
    baseline ``model`` (:func:`fit_member_baseline`): ``(n, P)``."""
    features = member_features(x)
    return model.predict_proba(features.reshape(-1, features.shape[-1]))[:, 1].reshape(features.shape[:2])


def isotropic_expectation(psi_deg, n_events=500):
    """Expected pair count of an isotropic map: C(n, 2) (1 - cos psi) / 2."""
    return n_events * (n_events - 1) / 2 * (1 - np.cos(np.radians(psi_deg))) / 2


def best_threshold(score, label):
    """The threshold on ``score`` (signal if score > threshold) with the best accuracy."""
    candidates = np.unique(score)
    accuracy = [np.mean((score > t) == label) for t in candidates]
    return candidates[int(np.argmax(accuracy))]


def evaluate_pair_count(x_train, y_train, x_test, y_test, psi_deg=DEFAULT_PSI_DEG, counts=None):
    """Choose psi and the threshold on the training maps, score on the test maps.
    ``counts``: optional precomputed ``(train, test)`` :func:`pair_counts` for ``psi_deg``.

    Returns a dict: ``per_psi`` {psi: (test AUC, test accuracy)}, the chosen ``psi_deg``,
    ``threshold``, ``auc``, ``accuracy``, the test ``scores`` and the ``predicted`` class
    (1: signal) of each test map.
    """
    train_counts, test_counts = counts if counts is not None else (pair_counts(x_train, list(psi_deg)),
                                                                   pair_counts(x_test, list(psi_deg)))
    per_psi, train_auc = {}, []
    for i, psi in enumerate(psi_deg):
        threshold = best_threshold(train_counts[:, i], y_train)
        per_psi[psi] = (roc_auc_score(y_test, test_counts[:, i]), np.mean((test_counts[:, i] > threshold) == y_test))
        train_auc.append(roc_auc_score(y_train, train_counts[:, i]))
    best = int(np.argmax(train_auc))
    threshold = best_threshold(train_counts[:, best], y_train)
    return {
        "per_psi": per_psi, "psi_deg": psi_deg[best], "threshold": threshold,
        "auc": per_psi[psi_deg[best]][0], "accuracy": per_psi[psi_deg[best]][1], "scores": test_counts[:, best],
        "predicted": (test_counts[:, best] > threshold).astype(int),
    }


def main(argv=None):
    from crsky import experiment
    from crsky.fileformat import load_file

    parser = argparse.ArgumentParser(prog="python -m crsky.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a cr_sphere .npz file")
    parser.add_argument("--psi", type=float, nargs="+", default=list(DEFAULT_PSI_DEG), help="angles in degrees")
    parser.add_argument("--n-test", type=int, default=None, help="test maps at the end of the file")
    args = parser.parse_args(argv)
    data = experiment.split(load_file(args.file), args.n_test)
    x_train, y_train = experiment.baseline_subset(*data.train)
    x_test, y_test = data.test
    result = evaluate_pair_count(x_train, y_train, x_test, y_test, tuple(args.psi))
    print(f"pair-count baseline on {args.file}: {len(y_test)} test maps")
    for psi, (auc, accuracy) in result["per_psi"].items():
        print(f"  psi {psi:5.1f} deg: AUC {auc:.3f}  accuracy {accuracy:.3f}")
    print(f"chosen on training maps: psi {result['psi_deg']:.1f} deg, threshold {result['threshold']} pairs "
          f"-> test AUC {result['auc']:.3f}, accuracy {result['accuracy']:.3f}")
    for method, what in (("multiplet", "multiplet counts"), ("energy", "energy-aware multiplets")):
        fitted = evaluate_classical(x_train, y_train, x_test, y_test, method)
        print(f"{what} + logistic regression: test AUC {fitted['auc']:.3f}, accuracy {fitted['accuracy']:.3f}")


if __name__ == "__main__":
    main()
