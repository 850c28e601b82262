"""Calibrate the simulator's presets: the reference DGCNN against the pair-count baseline.

For each preset: simulate (training maps, then test maps from the same seed's later
maps), train the reference DGCNN with the stable recipe, and print test accuracy and
AUC next to the pair-count statistic's (psi and threshold chosen on training maps).
Prints one Markdown table row per preset.

    python bench/calibrate.py --n-train 40000 --n-test 10000 --epochs 10 --presets textbook easy hard jf12
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from crsky.baseline import evaluate_pair_count  # noqa: E402
from crsky.simulate import PRESETS, simulate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["textbook"], choices=sorted(PRESETS))
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
        x, y = sim["data"], sim["label"]
        x_train, y_train, x_test, y_test = x[:args.n_train], y[:args.n_train], x[args.n_train:], y[args.n_train:]
        n_val = max(1, len(x_train) // 10)
        keras.utils.set_random_seed(args.seed)
        start = time.perf_counter()
        model, history = train_reference(x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:],
                                         epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose)
        accuracy, auc, _ = evaluate(model, x_test, y_test)
        train_s = time.perf_counter() - start
        baseline = evaluate_pair_count(x_train[:5000], y_train[:5000], x_test, y_test, (2.0, 4.0, 6.0, 10.0))
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
