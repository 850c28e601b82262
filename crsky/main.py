"""The main job, end to end: simulate sky maps, train the reference DGCNN, evaluate it
on the test split (with the energies as they are and permuted within each map) next to
every classical baseline on the same maps, and write plots and a summary.

    python -m crsky.main                       # CPU-sized default, about 7 minutes on 2 cores
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
    parser.add_argument("--out", default="out", help="folder for plots, model and summary")
    args = parser.parse_args(argv)

    import matplotlib

    from crsky import course

    matplotlib.use("Agg")
    course.quiet()
    import keras
    import numpy as np

    from crsky import plots
    from crsky.baseline import BASELINE_LABELS, evaluate_baselines
    from crsky.dataset import load_sky_maps
    from crsky.training import evaluate, fast_options, permute_energies, train_reference

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"1/4 simulating {args.n_maps} sky maps (preset {args.preset!r}, seed {args.seed})")
    arrays = load_sky_maps("simulate", args.preset, args.n_maps, args.seed, cache_dir=out / "data")
    data = experiment.split(arrays)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    test_source_id = arrays["source_id"][-len(y_test):]
    iso, sig = int(np.flatnonzero(y_test == 0)[0]), int(np.flatnonzero(y_test == 1)[0])
    plots.skymap_pair(x_test[iso], x_test[sig], test_source_id[sig]).savefig(out / "skymaps.png", dpi=120)

    print(f"2/4 training the reference DGCNN on {len(x_train)} maps, validating on {len(x_val)} "
          f"(keras {keras.__version__}, backend {keras.backend.backend()})")
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    model, history = train_reference(x_train, y_train, x_val, y_val, epochs=args.epochs, batch_size=args.batch_size,
                                     learning_rate=args.learning_rate, verbose=2, **fast_options())
    train_seconds = time.perf_counter() - start
    model.save(out / "dgcnn.keras")
    plots.training_curves(history).savefig(out / "training.png", dpi=120)

    print(f"3/4 evaluating on {len(y_test)} test maps")
    accuracy, auc, probability = evaluate(model, x_test, y_test)
    permuted_accuracy, permuted_auc, _ = evaluate(model, permute_energies(x_test, seed=args.seed), y_test)
    baselines = evaluate_baselines(*experiment.baseline_subset(x_train, y_train), x_test, y_test)
    baseline = baselines["pair_count"]
    best = max(baselines, key=lambda name: baselines[name]["accuracy"])
    ax = plots.roc_curves({"DGCNN": (y_test, probability)}
                          | {BASELINE_LABELS[name]: (y_test, result["scores"]) for name, result in baselines.items()})
    ax.figure.savefig(out / "roc.png", dpi=120, bbox_inches="tight")

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
        "dgcnn_minus_best_classical_accuracy": round(accuracy - float(baselines[best]["accuracy"]), 4),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("4/4 results")
    print(f"  {'DGCNN':<32} test accuracy {accuracy:.3f}   ROC AUC {auc:.3f}   (trained in {train_seconds:.0f} s)")
    print(f"  {'DGCNN, energies permuted':<32} test accuracy {permuted_accuracy:.3f}   ROC AUC {permuted_auc:.3f}")
    for name, result in baselines.items():
        print(f"  {BASELINE_LABELS[name]:<32} test accuracy {result['accuracy']:.3f}   ROC AUC {result['auc']:.3f}")
    print(f"  DGCNN - best classical ({BASELINE_LABELS[best]}): {accuracy - baselines[best]['accuracy']:+.3f} "
          f"in accuracy")
    print(f"  plots, model and summary in {out}/: skymaps.png training.png roc.png dgcnn.keras summary.json")
    return summary


if __name__ == "__main__":
    main()
