"""The main job, end to end: simulate sky maps and compare the graph networks with the
classical statistics on the same test maps, in three tasks, then write plots and a summary:

1. the map task: the reference DGCNN, signal maps against isotropic ones (with the energies
   as they are and permuted within each map), next to every classical baseline;
2. the ordering task: signal maps against the same maps with their energies permuted,
   next to the energy-aware statistic (:mod:`crsky.comparisons`);
3. the per-cosmic-ray task: which cosmic rays came from a source, the member DGCNN next to
   the classical member baseline.

The last two train on ``--side-maps`` signal maps for ``--side-epochs`` epochs.

    python -m crsky.main                       # CPU-sized default, about 10 minutes on 2 cores
    python -m crsky.main --n-maps 50000 --epochs 10 --batch-size 64 --learning-rate 3e-3   # the full exercise (GPU)
"""

import argparse
import json
import time
from pathlib import Path

from crsky import experiment

CPU = experiment.SIZES["cpu"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.main", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=experiment.PRESET)
    parser.add_argument("--n-maps", type=int, default=CPU.n_maps,
                        help="maps to simulate; the last fifth (at most 10,000) is the test set "
                             f"(default {CPU.n_maps}: the notebooks' CPU size)")
    parser.add_argument("--epochs", type=int, default=CPU.epochs)
    parser.add_argument("--batch-size", type=int, default=CPU.batch_size)
    parser.add_argument("--learning-rate", type=float, default=CPU.learning_rate,
                        help="start of the cosine decay of the learning rate")
    parser.add_argument("--seed", type=int, default=experiment.DATA_SEED)
    parser.add_argument("--side-maps", type=int, default=experiment.SIDE_TASK_MAPS,
                        help="signal training maps for the ordering and the per-cosmic-ray task "
                             f"(default {experiment.SIDE_TASK_MAPS})")
    parser.add_argument("--side-epochs", type=int, default=experiment.SIDE_TASK_EPOCHS,
                        help=f"epochs of those two tasks (default {experiment.SIDE_TASK_EPOCHS})")
    parser.add_argument("--out", default="out", help="folder for plots, model and summary")
    args = parser.parse_args(argv)

    import matplotlib

    from crsky import course

    matplotlib.use("Agg")
    course.quiet()
    import keras
    import numpy as np

    from crsky import comparisons, plots
    from crsky.baseline import BASELINE_LABELS, evaluate_baselines
    from crsky.dataset import load_sky_maps
    from crsky.training import evaluate, permute_energies, train_from_seed

    job_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"1/6 simulating {args.n_maps} sky maps (preset {args.preset!r}, seed {args.seed})")
    arrays = load_sky_maps("simulate", args.preset, args.n_maps, args.seed, cache_dir=out / "data")
    data = experiment.split(arrays)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    test_source_id = arrays["source_id"][-len(y_test):]
    iso, sig = int(np.flatnonzero(y_test == 0)[0]), int(np.flatnonzero(y_test == 1)[0])
    plots.skymap_pair(x_test[iso], x_test[sig], test_source_id[sig]).savefig(out / "skymaps.png", dpi=120)

    print(f"2/6 map task: training the reference DGCNN on {len(x_train)} maps, validating on {len(x_val)} "
          f"(keras {keras.__version__}, backend {keras.backend.backend()})")
    model, history, train_seconds = train_from_seed(args.seed, x_train, y_train, x_val, y_val, epochs=args.epochs,
                                                    batch_size=args.batch_size, learning_rate=args.learning_rate,
                                                    verbose=2)
    model.save(out / "dgcnn.keras")
    plots.training_curves(history).savefig(out / "training.png", dpi=120)

    print(f"3/6 map task: evaluating on {len(y_test)} test maps, next to the classical statistics")
    accuracy, auc, probability = evaluate(model, x_test, y_test)
    permuted_accuracy, permuted_auc, _ = evaluate(model, permute_energies(x_test, seed=args.seed), y_test)
    baselines = evaluate_baselines(*experiment.baseline_subset(x_train, y_train), x_test, y_test)
    baseline = baselines["pair_count"]
    best = max(baselines, key=lambda name: baselines[name]["accuracy"])
    gap = experiment.paired_difference((probability > 0.5) == y_test, baselines[best]["predicted"] == y_test)
    ax = plots.roc_curves({"DGCNN": (y_test, probability)}
                          | {BASELINE_LABELS[name]: (y_test, result["scores"]) for name, result in baselines.items()})
    ax.figure.savefig(out / "roc.png", dpi=120, bbox_inches="tight")

    signal_train, signal_test = x_train[y_train == 1][:args.side_maps], x_test[y_test == 1]
    print(f"4/6 ordering task: {len(signal_train)} signal training maps, each as it is and with its energies "
          f"permuted, {args.side_epochs} epoch(s); tested on {2 * len(signal_test)} maps")
    ordering = comparisons.ordering(signal_train, signal_test, args.side_epochs, args.batch_size,
                                    args.learning_rate, args.seed, verbose=2)
    ax = plots.roc_curves(ordering.pop("scores"))
    ax.set_title("ordering task: energies as they are against permuted", fontsize=9)
    ax.figure.savefig(out / "roc_ordering.png", dpi=120, bbox_inches="tight")

    print(f"5/6 per-cosmic-ray task: the member DGCNN on {len(signal_train)} maps with sources, "
          f"{args.side_epochs} epoch(s); tested on {len(signal_test)}")
    member = comparisons.members(arrays, data, args.side_maps, args.side_epochs, args.batch_size,
                                 args.learning_rate, args.seed)
    ax = plots.purity_efficiency(member.pop("curves"))
    ax.set_title("per-cosmic-ray task: purity against efficiency", fontsize=9)
    ax.figure.savefig(out / "purity_members.png", dpi=120, bbox_inches="tight")

    summary = {
        "preset": args.preset, "n_maps": args.n_maps, "n_train": len(x_train), "n_val": len(x_val),
        "n_test": len(y_test), "epochs": args.epochs, "seed": args.seed, "backend": keras.backend.backend(),
        "train_seconds": round(train_seconds, 1), "dgcnn_test_accuracy": round(accuracy, 4),
        "dgcnn_test_auc": round(auc, 4), "pair_count_psi_deg": baseline["psi_deg"],
        "pair_count_test_accuracy": round(float(baseline["accuracy"]), 4),
        "pair_count_test_auc": round(float(baseline["auc"]), 4),
        "dgcnn_permuted_energy_test_accuracy": round(permuted_accuracy, 4),
        "dgcnn_permuted_energy_test_auc": round(permuted_auc, 4),
        "classical": {name: {"accuracy": round(float(r["accuracy"]), 4), "auc": round(float(r["auc"]), 4)}
                      for name, r in baselines.items()},
        "best_classical": best,
        "dgcnn_minus_best_classical_accuracy": round(gap["difference"], 4),
        "dgcnn_minus_best_classical_accuracy_se": round(gap["se"], 4),
        "ordering": {key: round(value, 4) if isinstance(value, float) else value for key, value in ordering.items()},
        "members": {key: round(float(value), 4) if key not in ("n_train", "n_test", "parameters") else int(value)
                    for key, value in member.items()},
        "total_seconds": round(time.perf_counter() - job_start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("6/6 results")
    print(f"  map task ({len(y_test)} test maps, signal against isotropic):")
    print(f"  {'DGCNN':<32} test accuracy {accuracy:.3f}   ROC AUC {auc:.3f}   (trained in {train_seconds:.0f} s)")
    print(f"  {'DGCNN, energies permuted':<32} test accuracy {permuted_accuracy:.3f}   ROC AUC {permuted_auc:.3f}")
    for name, result in baselines.items():
        print(f"  {BASELINE_LABELS[name]:<32} test accuracy {result['accuracy']:.3f}   ROC AUC {result['auc']:.3f}")
    print(f"  DGCNN - best classical ({BASELINE_LABELS[best]}): {gap['difference']:+.3f} in accuracy "
          f"(paired standard error {gap['se']:.3f})")
    print(f"  ordering task ({ordering['n_test']} test maps, energies as they are against permuted):")
    print(f"  {'DGCNN':<32} test accuracy {ordering['dgcnn_accuracy']:.3f}   ROC AUC {ordering['dgcnn_auc']:.3f}")
    print(f"  {'energy-aware statistic':<32} test accuracy {ordering['energy_aware_accuracy']:.3f}   "
          f"ROC AUC {ordering['energy_aware_auc']:.3f}")
    print(f"  DGCNN - energy-aware statistic: {ordering['dgcnn_minus_energy_aware_accuracy']:+.3f} in accuracy "
          f"(paired standard error {ordering['dgcnn_minus_energy_aware_accuracy_se']:.3f})")
    print(f"  per-cosmic-ray task ({member['n_test']} test maps with sources; purity at the baseline's "
          f"efficiency {member['efficiency']:.3f}, one threshold):")
    print(f"  {'member DGCNN':<32} purity {member['purity']:.3f}   per-cosmic-ray AUC {member['auc']:.3f}")
    print(f"  {'classical member baseline':<32} purity {member['baseline_purity']:.3f}   "
          f"per-cosmic-ray AUC {member['baseline_auc']:.3f}")
    print(f"  member DGCNN - baseline: {member['purity_gain']:+.3f} in purity; 25 per map each "
          f"{member['purity_top_n'] - member['baseline_purity_top_n']:+.3f} "
          f"(paired standard error {member['purity_top_n_gain_se']:.3f})")
    print(f"  plots, model and summary in {out}/: skymaps.png training.png roc.png roc_ordering.png "
          f"purity_members.png dgcnn.keras summary.json ({summary['total_seconds']:.0f} s in all)")
    return summary


if __name__ == "__main__":
    main()
