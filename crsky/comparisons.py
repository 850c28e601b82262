"""The main job's comparisons beyond the map task, each network next to its classical
baseline on the same maps:

* the **ordering task** (:func:`ordering_task`): signal maps as they are
  against the same maps with their energies permuted within each map. Only a street's
  energy ordering tells them apart; the classical peer is the energy-aware statistic.
* the **per-cosmic-ray task** (:func:`crsky.members.compare_on`): which cosmic rays of a
  map with sources came from a source, against the classical member baseline.

Both train on a subset of the training split's signal maps (``n_maps``) for ``epochs``
epochs, so that the main job stays within minutes on a CPU, and are tested on the test
split's signal maps.
"""

import numpy as np

from crsky import experiment


def ordering_task(x, seed=0, permute=None):
    """The ordering task from maps ``x`` ``(n, P, 4)`` of the signal class: each map as it is
    (label 1) and the same map with its energies permuted within it (label 0), shuffled. Only
    the energy ordering tells the two apart. ``seed`` shuffles the maps; ``permute(x)`` makes
    the permuted copies (default: :func:`crsky.training.permute_energies` with ``seed``). Returns ``(maps (2n, P, 4), labels (2n,))``."""
    from crsky.training import permute_energies

    x = np.asarray(x)
    permuted = np.asarray(permute(x) if permute is not None else permute_energies(x, seed=seed))
    if permuted.shape != x.shape:
        raise ValueError(f"permute must return maps of the shape it was given, {x.shape}; it returned {permuted.shape}.")
    maps = np.concatenate([x, permuted])
    labels = np.r_[np.ones(len(x), int), np.zeros(len(x), int)]
    order = np.random.default_rng(seed).permutation(len(maps))
    return maps[order], labels[order]


def ordering(train_signal, test_signal, epochs, batch_size, learning_rate, seed, verbose=2):
    """The reference DGCNN trained on the ordering task against the energy-aware statistic.

    ``train_signal``, ``test_signal``: signal maps ``(n, 500, 4)``; each gives the ordering
    task twice as many maps (as they are, label 1; permuted, label 0). Returns a dict of
    ``n_train``, ``n_test`` (ordering maps), ``dgcnn_accuracy``, ``dgcnn_auc``,
    ``energy_aware_accuracy``, ``energy_aware_auc``, ``dgcnn_minus_energy_aware_accuracy``
    and its paired standard error ``..._se`` over the test maps, ``train_seconds``; and
    ``scores``: ``{"DGCNN": (labels, probability), "energy-aware statistic": (labels, scores)}``
    for a ROC plot."""
    from crsky.baseline import evaluate_classical
    from crsky.training import evaluate, train_from_seed

    x_train, y_train = ordering_task(np.asarray(train_signal), seed)
    x_test, y_test = ordering_task(np.asarray(test_signal), seed + 1)
    classical = evaluate_classical(*experiment.baseline_subset(x_train, y_train), x_test, y_test, "energy")
    model, _, train_seconds = train_from_seed(seed, x_train, y_train, epochs=epochs, batch_size=batch_size,
                                              learning_rate=learning_rate, verbose=verbose)
    accuracy, auc, probability = evaluate(model, x_test, y_test)
    gap = experiment.paired_difference((probability > 0.5) == y_test, classical["predicted"] == y_test)
    return {"n_train": len(y_train), "n_test": len(y_test), "epochs": epochs,
            "dgcnn_accuracy": accuracy, "dgcnn_auc": auc,
            "energy_aware_accuracy": classical["accuracy"], "energy_aware_auc": classical["auc"],
            "dgcnn_minus_energy_aware_accuracy": gap["difference"], "dgcnn_minus_energy_aware_accuracy_se": gap["se"],
            "train_seconds": train_seconds,
            "scores": {"DGCNN": (y_test, probability), "energy-aware statistic": (y_test, classical["scores"])}}


def members(arrays, split, n_maps, epochs, batch_size, learning_rate, seed, verbose=2):
    """The member DGCNN against the classical member baseline (:func:`crsky.members.compare_on`)
    on the maps with sources of ``split`` (:func:`crsky.experiment.split` of ``arrays``, which
    carry ``source_id``): trained on the first ``n_maps`` training maps with sources, tested
    on all test maps with sources. Returns that function's dict, with ``curves`` for the plots."""
    from crsky import members as member_task

    train, val, test = member_task.signal_split(arrays, n_test_maps=len(split.test[1]))
    train = (train[0][:n_maps], train[1][:n_maps])
    size = experiment.Size("main job", n_maps=len(arrays["label"]), epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate)
    return member_task.compare_on(train, val, test, size, seed=seed,
                                  n_baseline_maps=min(n_maps, member_task.BASELINE_FIT_MAPS), keep_scores=True,
                                  verbose=verbose)
