"""How honest students' models score under the grading rule: the course's recipe at a size
(default: the notebooks' CPU size) trained from several seeds on the course's data, each
model scored on the public held-out maps as the grader scores a saved model, against the
pair-count baseline on the same maps (crsky.scoring.full_marks_accuracy).

Prints one line per seed and the mean and spread of the accuracy, of its margin over the
baseline and of the points: the figures behind ``crsky.experiment.FULL_MARKS_MARGIN``.

    python -m bench.grading_spread --seeds 1 2 3            # about 10 minutes a seed on 2 cores
    python -m bench.grading_spread --size small --seeds 1   # a quick smoke test
"""

import argparse
import json


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--size", default="cpu", help="a size of crsky.experiment.SIZES")
    parser.add_argument("--points", type=float, default=4, help="the points of notebook 3's model test")
    parser.add_argument("--out", help="write the results to this JSON file")
    args = parser.parse_args()

    from crsky import course

    course.quiet()
    import keras
    import numpy as np

    from crsky import experiment
    from crsky.dataset import load_sky_maps
    from crsky import scoring
    from crsky.training import train_from_seed

    size = experiment.SIZES[args.size]
    (x_train, y_train), (x_val, y_val), _ = experiment.split(load_sky_maps(n_maps=size.n_maps, progress=False))
    x_held, y_held = scoring.held_out_maps()
    baseline = scoring.baseline_accuracy(x_held, y_held)
    full_marks_at = scoring.full_marks_accuracy(baseline)
    print(f"keras {keras.__version__} ({keras.backend.backend()}); size {size.name!r}: {len(x_train)} training maps, "
          f"{size.epochs} epochs, batch {size.batch_size}, learning rate from {size.learning_rate:g}; {len(y_held)} public held-out maps: pair count "
          f"{baseline:.4f}, full points from {full_marks_at:.4f}", flush=True)
    rows = []
    for seed in args.seeds:
        model, _, seconds = train_from_seed(seed, x_train, y_train, x_val, y_val, epochs=size.epochs,
                                            batch_size=size.batch_size, learning_rate=size.learning_rate)
        accuracy = scoring.held_out_accuracy(scoring.predict_signal_probability(model, x_held), y_held)
        points = scoring.accuracy_points(accuracy, args.points, full_marks_at)
        rows.append({"seed": seed, "accuracy": round(accuracy, 4), "margin": round(accuracy - baseline, 4),
                     "points": round(points, 2), "train_seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    accuracy = np.array([r["accuracy"] for r in rows])
    points = np.array([r["points"] for r in rows])
    spread = accuracy.std(ddof=1) if len(rows) > 1 else float("nan")
    print(f"\n{len(rows)} seeds: held-out accuracy {accuracy.mean():.4f} +- {spread:.4f} (sample std), "
          f"min {accuracy.min():.4f}; margin over the pair count {accuracy.mean() - baseline:+.4f} "
          f"(min {accuracy.min() - baseline:+.4f}); required margin {experiment.FULL_MARKS_MARGIN:+.4f}; "
          f"points {points.mean():.2f} (min {points.min():.2f}) of {args.points:g}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"size": size.name, "baseline": baseline, "full_marks_at": full_marks_at, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
