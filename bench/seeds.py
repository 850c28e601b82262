"""The map task over training seeds: how far the reference DGCNN's lead over the best classical
statistic is the luck of one training run.

On the main job's maps (the course's preset and data seed, ``--n-maps`` simulated, split as
:func:`crsky.experiment.split` splits them) the classical statistics are fitted once; the
reference DGCNN is then trained once per training seed with the main job's recipe (the
CPU size: 3 epochs in batches of 32 from 6e-3, the sky graph computed once per map). Prints
one row per seed, each with its accuracy difference to the best classical statistic and the
paired standard error over the test maps, then the mean over the seeds: the difference of the
seeds' mean correctness per map to the statistic's, with its paired standard error, and the
spread between seeds. Writes the figures to ``--json``.

    python -m bench.seeds                                   # the CPU size, seeds 1 2 3 (~15 min on 2 cores)
    python -m bench.seeds --n-maps 1200 --epochs 1 --seeds 1 2   # a smoke test
"""

import argparse
import json

import numpy as np

from crsky import experiment

CPU = experiment.SIZES["cpu"]


def summarise(correct_by_seed, baseline_correct):
    """The mean over seeds of the accuracy difference to a baseline on the same maps.

    ``correct_by_seed``: booleans ``(seeds, n)``, whether each seed's network classified each
    test map right; ``baseline_correct``: booleans ``(n,)``. Returns a dict of ``difference``
    (the seeds' mean accuracy minus the baseline's) and its paired standard error ``se`` over
    the maps (each map's mean correctness over the seeds against the baseline's), ``seed_sd``
    (the standard deviation of the seeds' own differences) and ``per_seed``."""
    correct = np.asarray(correct_by_seed, float)
    if correct.ndim != 2 or correct.shape[1] != len(baseline_correct):
        raise ValueError(f"correct_by_seed must be (seeds, {len(baseline_correct)}); got {correct.shape}.")
    mean = experiment.paired_difference(correct.mean(axis=0), baseline_correct)
    per_seed = [experiment.paired_difference(row, baseline_correct) for row in correct]
    differences = [seed["difference"] for seed in per_seed]
    return {"difference": mean["difference"], "se": mean["se"],
            "seed_sd": float(np.std(differences, ddof=1)) if len(differences) > 1 else 0.0, "per_seed": per_seed}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.seeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=experiment.PRESET)
    parser.add_argument("--n-maps", type=int, default=CPU.n_maps)
    parser.add_argument("--data-seed", type=int, default=experiment.DATA_SEED)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds")
    parser.add_argument("--epochs", type=int, default=CPU.epochs)
    parser.add_argument("--batch-size", type=int, default=CPU.batch_size)
    parser.add_argument("--learning-rate", type=float, default=CPU.learning_rate)
    parser.add_argument("--json", default="seeds.json")
    args = parser.parse_args(argv)

    from crsky import course

    course.quiet()
    import keras

    from crsky.baseline import BASELINE_LABELS, evaluate_baselines
    from crsky.dataset import load_sky_maps
    from crsky.training import evaluate, train_from_seed

    arrays = load_sky_maps("simulate", args.preset, args.n_maps, args.data_seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = experiment.split(arrays)
    baselines = evaluate_baselines(*experiment.baseline_subset(x_train, y_train), x_test, y_test)
    best = max(baselines, key=lambda name: baselines[name]["accuracy"])
    baseline_correct = baselines[best]["predicted"] == y_test
    print(f"{args.preset}, {len(y_train)} training / {len(y_test)} test maps, {args.epochs} epochs in batches of "
          f"{args.batch_size} from {args.learning_rate:g}; keras {keras.__version__} on {keras.backend.backend()}")
    print(f"best classical statistic: {BASELINE_LABELS[best]}, test accuracy {baselines[best]['accuracy']:.4f}")
    print("| seed | DGCNN accuracy | AUC | - best classical | paired SE | training s |")
    print("|---|---|---|---|---|---|")
    rows, correct_by_seed = [], []
    for seed in args.seeds:
        model, _, seconds = train_from_seed(seed, x_train, y_train, x_val, y_val, epochs=args.epochs,
                                            batch_size=args.batch_size, learning_rate=args.learning_rate)
        accuracy, auc, probability = evaluate(model, x_test, y_test)
        correct = (probability > 0.5) == y_test
        gap = experiment.paired_difference(correct, baseline_correct)
        correct_by_seed.append(correct)
        rows.append({"seed": seed, "accuracy": accuracy, "auc": auc, "seconds": seconds, **gap})
        print(f"| {seed} | {accuracy:.4f} | {auc:.4f} | {gap['difference']:+.4f} | {gap['se']:.4f} | {seconds:.0f} |",
              flush=True)
    summary = summarise(correct_by_seed, baseline_correct)
    print(f"mean over {len(args.seeds)} seeds: DGCNN accuracy {np.mean([r['accuracy'] for r in rows]):.4f}, "
          f"{summary['difference']:+.4f} against the {BASELINE_LABELS[best]} (paired SE {summary['se']:.4f}); "
          f"spread between seeds (SD) {summary['seed_sd']:.4f}")
    record = {"preset": args.preset, "n_maps": args.n_maps, "data_seed": args.data_seed, "epochs": args.epochs,
              "batch_size": args.batch_size, "learning_rate": args.learning_rate, "best_classical": best,
              "best_classical_accuracy": baselines[best]["accuracy"], "seeds": rows,
              "mean_difference": summary["difference"], "mean_difference_se": summary["se"],
              "seed_sd": summary["seed_sd"], "keras_backend": keras.backend.backend()}
    with open(args.json, "w") as handle:
        json.dump(record, handle, indent=1)
    return record


if __name__ == "__main__":
    main()
