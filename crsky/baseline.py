"""A classical baseline: the number of cosmic-ray pairs closer than an angle psi.

Streets and clusters add close pairs; an isotropic map of 500 cosmic rays has on
average C(500, 2) (1 - cos psi) / 2 of them (152, 342 and 948 for 4, 6 and 10 deg).
The statistic ignores the energies, so it cannot use the energy ordering of streets.

Command line (psi and threshold chosen on the file's training split, scored on its test split)::

    python -m crsky.baseline data/sky.npz
"""

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

DEFAULT_PSI_DEG = (4.0, 6.0, 10.0)


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
    upper = np.triu(np.ones((x.shape[1], x.shape[1]), dtype=bool), k=1)
    for start in range(0, len(x), chunk_size):
        vectors = x[start:start + chunk_size, :, :3].astype(np.float32)
        cosine = np.einsum("npc,nqc->npq", vectors, vectors)[:, upper]  # (n, pairs)
        for i, c in enumerate(cos_psi):
            counts[start:start + chunk_size, i] = np.count_nonzero(cosine > c, axis=1)
    return counts[:, 0] if np.ndim(psi_deg) == 0 else counts


def isotropic_expectation(psi_deg, n_events=500):
    """Expected pair count of an isotropic map: C(n, 2) (1 - cos psi) / 2."""
    return n_events * (n_events - 1) / 2 * (1 - np.cos(np.radians(psi_deg))) / 2


def best_threshold(score, label):
    """The threshold on ``score`` (signal if score > threshold) with the best accuracy."""
    candidates = np.unique(score)
    accuracy = [np.mean((score > t) == label) for t in candidates]
    return candidates[int(np.argmax(accuracy))]


def evaluate_pair_count(x_train, y_train, x_test, y_test, psi_deg=DEFAULT_PSI_DEG):
    """Choose psi and the threshold on the training maps, score on the test maps.

    Returns a dict: ``per_psi`` {psi: (test AUC, test accuracy)}, the chosen ``psi_deg``,
    ``threshold``, ``auc``, ``accuracy`` and the test ``scores``.
    """
    train_counts = pair_counts(x_train, list(psi_deg))
    test_counts = pair_counts(x_test, list(psi_deg))
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


if __name__ == "__main__":
    main()
