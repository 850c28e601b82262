"""Calibrate the simulator's presets: the reference DGCNN against the pair-count baseline.

For each preset: simulate (training maps, then test maps from the same seed's later
maps), train the reference DGCNN with the stable recipe, and print test accuracy and
AUC next to the pair-count statistic's (psi and threshold chosen on training maps).
Prints one Markdown table row per preset.

    python -m bench.calibrate --n-train 40000 --n-test 10000 --epochs 10 --presets textbook easy hard jf12
"""

import argparse
import dataclasses
import json
import os
import platform
import time

from crsky import experiment
from crsky.baseline import evaluate_pair_count
from crsky.presets import PRESETS
from crsky.simulate import simulate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=[experiment.PRESET], choices=sorted(PRESETS))
    parser.add_argument("--n-train", type=int, default=16000)
    parser.add_argument("--n-test", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                        help="override preset parameters, e.g. --set deflection_deg_eev=600 smearing_deg_eev=30")
    args = parser.parse_args()

    import keras

    from crsky.training import evaluate, train_reference

    device = "CPU" if not any("gpu" in str(d).lower() or "cuda" in str(d).lower() for d in _devices()) else "GPU"
    print(f"keras {keras.__version__} on {keras.backend.backend()}, {device}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; {args.n_train} training / {args.n_test} test maps, "
          f"{args.epochs} epochs, batch {args.batch_size}", flush=True)
    rows = []
    overrides = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
    for preset in args.presets:
        params = dataclasses.replace(PRESETS[preset], **overrides)
        label = preset + "".join(f", {k}={v}" for k, v in overrides.items())
        sim = simulate(params, args.n_train + args.n_test, seed=args.seed)
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = experiment.split(sim, n_test_maps=args.n_test)
        keras.utils.set_random_seed(args.seed)
        start = time.perf_counter()
        model, history = train_reference(x_train, y_train, x_val, y_val, epochs=args.epochs,
                                         batch_size=args.batch_size, verbose=args.verbose)
        accuracy, auc, _ = evaluate(model, x_test, y_test)
        train_s = time.perf_counter() - start
        baseline = evaluate_pair_count(*experiment.baseline_subset(x_train, y_train), x_test, y_test,
                                       (2.0, 4.0, 6.0, 10.0))
        val = history.history["val_accuracy"]
        row = (f"| {label} | {accuracy:.3f} | {auc:.3f} | {baseline['accuracy']:.3f} | {baseline['auc']:.3f} "
               f"| {baseline['psi_deg']:g} | {args.n_train}/{args.n_test}, {args.epochs} ep | "
               f"{history.history['seconds_per_epoch']:.0f} s/epoch {device} | val acc last 3: "
               f"{' '.join(f'{v:.3f}' for v in val[-3:])} |")
        rows.append(row)
        print(row, f"(total {train_s:.0f} s)", flush=True)
    print("\n| preset | DGCNN test acc | DGCNN AUC | pair-count acc | pair-count AUC | psi (deg) | maps, epochs "
          "| speed | validation |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


def _devices():
    try:
        import jax

        return jax.devices()
    except Exception:
        try:
            import tensorflow as tf

            return tf.config.list_physical_devices()
        except Exception:
            return []


if __name__ == "__main__":
    main()
