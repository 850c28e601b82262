"""Calibrate candidate sky settings on a GPU: the reference DGCNN (with its energy scaling)
against the classical baselines, on the same test maps.

For each setting: simulate ``--n-train`` training and ``--n-test`` test maps (in parallel
processes), train the reference DGCNN (the textbook's three EdgeConvs, the course's
stable recipe: BatchNormalization momentum 0.9, Adam 3e-3 with cosine decay) for
``--epochs`` epochs, evaluate it on the test maps as they are and with the energies
permuted within each map, and evaluate the classical baselines (pair count; multiplet
counts and the energy-aware statistics with a logistic regression fitted on training
maps). Prints one Markdown table row per setting and writes everything to a JSON file
after each setting, so that a run cut short keeps what it finished.

GPU (JAX backend unless ``KERAS_BACKEND`` says otherwise; about 60 s per setting on an
H200 at the full size)::

    python -m bench.calibrate_gpu --json calibration.json

CPU smoke test::

    python -m bench.calibrate_gpu --n-train 600 --n-test 200 --epochs 1 --settings textbook

Kernels against each other on the same maps (``--kernels``, from
``crsky.models.KERNELS``: the first EdgeConv's kernel network; each is trained with the
same seed on the same maps) and the ordering task (``--task ordering``: every signal map
as it is, label 1, and the same map with its energies permuted, label 0; only the energy
ordering tells them apart). Each kernel's accuracy difference to the others and to every
classical statistic comes with its paired standard error over the test maps. The CPU
size on 2 cores, one seed (the fixed sky graph once per map, 3 epochs from 6e-3)::

    KERAS_BACKEND=tensorflow python -m bench.calibrate_gpu --n-train 21600 --n-test 6000 --epochs 3 \
        --batch-size 32 --learning-rate 6e-3 --fast --processes 1 --seed 1 --settings textbook \
        --kernels edge textbook
"""

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import time

import numpy as np

from crsky.comparisons import ordering_task
from crsky.experiment import paired_difference
from crsky.presets import PRESETS, SkyParameters
from crsky.simulate import simulate

# Candidate settings: overrides of SkyParameters() (500 cosmic rays above 40 EeV, protons,
# 1 deg resolution, Poisson multiplicities, isotropic sources, full sky).
SETTINGS = {name: dataclasses.asdict(params) for name, params in PRESETS.items()}
SETTINGS.update({
    # Long thin streets: D at the 84th-95th percentile of the JF12 line-of-sight strengths
    # (500-700 deg EeV: 12-17 deg at 40 EeV), turbulent spread S = 20 deg EeV (0.5 deg at
    # 40 EeV, inside the 1-2 deg bound from rotation measures), 1 deg resolution, protons,
    # Poisson multiplicities. Named s<sources>-f<signal %>-D<D>-S<S>.
    "s5-f5-D600-S20": dict(n_sources=5, signal_fraction=0.05, deflection_deg_eev=600.0, smearing_deg_eev=20.0),
    "s3-f3-D600-S20": dict(n_sources=3, signal_fraction=0.03, deflection_deg_eev=600.0, smearing_deg_eev=20.0),
    "s5-f4-D700-S20": dict(n_sources=5, signal_fraction=0.04, deflection_deg_eev=700.0, smearing_deg_eev=20.0),
    "s10-f5-D500-S20": dict(n_sources=10, signal_fraction=0.05, deflection_deg_eev=500.0, smearing_deg_eev=20.0),
    "s20-f6-D500-S20-euclid": dict(n_sources=20, signal_fraction=0.06, deflection_deg_eev=500.0,
                                   smearing_deg_eev=20.0, source_flux="euclidean"),
    "jf12-s10-f5-S20": dict(n_sources=10, signal_fraction=0.05, deflection="jf12", deflection_deg_eev=1.0,
                            smearing_deg_eev=20.0),
})
NO_SCALE = "+noscale"  # a setting name ending so trains the textbook's model (no EnergyScaling)
# In order of priority (the time limit skips the last ones first).
DEFAULT_SETTINGS = ("textbook", "s5-f5-D600-S20", "s5-f5-D600-S20+eref1400", "s3-f3-D600-S20", "s10-f5-D500-S20",
                    "s5-f5-D600-S20" + NO_SCALE)


def model_options(name):
    """The model options a setting's name carries after its sky parameters: "+noscale" (the
    textbook's model, no EnergyScaling) or "+eref<D>" (EnergyScaling's reference field D
    in deg EeV instead of 320)."""
    options = {"energy_scaling": True, "energy_deflection_deg_eev": 320.0}
    for part in name.split("+")[1:]:
        if part == NO_SCALE[1:]:
            options["energy_scaling"] = False
        elif part.startswith("eref"):
            options["energy_deflection_deg_eev"] = float(part[4:])
        else:
            raise SystemExit(f"unknown model option +{part} in {name!r}: use {NO_SCALE} or +eref<D>")
    return options


def parameters(name, overrides=None):
    """SkyParameters of a named setting with optional overrides (model options after a
    "+" are ignored here, see :func:`model_options`)."""
    name = name.split("+")[0]
    if name not in SETTINGS:
        raise SystemExit(f"unknown setting {name!r}; choose from {sorted(SETTINGS)}")
    values = dict(SETTINGS[name]) | dict(overrides or {})
    if "charges" in values:
        values["charges"] = tuple(tuple(c) for c in values["charges"])
    return SkyParameters(**values)


PSI_DEG = (2.0, 4.0, 6.0, 10.0)


def _features_task(x):
    from crsky.baseline import classical_features, pair_counts

    return classical_features(x, "energy"), pair_counts(x, list(PSI_DEG))


def parallel_features(x, processes, chunk=500):
    """The energy method's classical features of maps ``x`` (they include the multiplet
    counts) and their pair counts, computed in ``processes`` processes."""
    if processes <= 1 or len(x) <= chunk:
        return _features_task(x)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_features_task, [x[i:i + chunk] for i in range(0, len(x), chunk)])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def classical(x_train, y_train, x_test, y_test, processes, correct=None):
    """Pair count, multiplet counts and energy-aware statistics on the same test maps.
    ``correct``: a dict that receives each statistic's per-map correctness ``(n_test,)``."""
    from crsky.baseline import MAX_NEIGHBOURS, MULTIPLET_ANGLES_DEG, evaluate_classical, evaluate_pair_count

    (train, train_pairs), (test, test_pairs) = parallel_features(x_train, processes), parallel_features(x_test, processes)
    results = {"pair_count": evaluate_pair_count(None, y_train, None, y_test, PSI_DEG, counts=(train_pairs, test_pairs))}
    n = len(MULTIPLET_ANGLES_DEG) * (MAX_NEIGHBOURS + 1)
    results["multiplet"] = evaluate_classical(None, y_train, None, y_test, features=(train[:, :n], test[:, :n]))
    results["energy"] = evaluate_classical(None, y_train, None, y_test, features=(train, test))
    if correct is not None:
        for name, result in results.items():
            correct[name] = result["predicted"] == y_test
    return {k: {"accuracy": float(v["accuracy"]), "auc": float(v["auc"])} for k, v in results.items()}


def run_setting(name, params, args):
    import keras

    from crsky.training import evaluate, fast_options, permute_energies, train_reference

    timings = {}
    start = time.perf_counter()
    if args.task == "ordering":  # signal maps only, each as it is and permuted
        sim = simulate(params, args.n_train + args.n_test + 200, seed=args.seed, processes=args.processes)
        signal = sim["data"][sim["label"] == 1]
        if len(signal) < (args.n_train + args.n_test) // 2:
            raise SystemExit(f"only {len(signal)} signal maps for {(args.n_train + args.n_test) // 2}: simulate more")
        x_train, y_train = ordering_task(signal[:args.n_train // 2], args.seed)
        x_test, y_test = ordering_task(signal[args.n_train // 2:(args.n_train + args.n_test) // 2], args.seed + 1)
    else:
        sim = simulate(params, args.n_train + args.n_test, seed=args.seed, processes=args.processes)
        x, y = sim["data"], sim["label"]
        x_train, y_train, x_test, y_test = x[:args.n_train], y[:args.n_train], x[args.n_train:], y[args.n_train:]
    timings["simulate_s"] = time.perf_counter() - start

    start = time.perf_counter()
    n_classical = len(x_train) if args.n_classical_train <= 0 else min(args.n_classical_train, len(x_train))
    correct = {}
    baselines = classical(x_train[:n_classical], y_train[:n_classical], x_test, y_test, args.processes, correct)
    timings["classical_s"] = time.perf_counter() - start

    options = model_options(name)
    energy_scaling = options["energy_scaling"] and not args.no_energy_scaling
    kernels = {}
    for kernel in args.kernels:
        start = time.perf_counter()
        keras.utils.set_random_seed(args.seed)
        model, history = train_reference(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                                         learning_rate=args.learning_rate, verbose=args.verbose,
                                         energy_scaling=energy_scaling, kernel=kernel,
                                         energy_deflection_deg_eev=options["energy_deflection_deg_eev"],
                                         **(fast_options() if args.fast else {}))
        train_s = time.perf_counter() - start
        accuracy, auc, probability = evaluate(model, x_test, y_test)
        correct[kernel] = (probability > 0.5) == y_test
        result = {"accuracy": accuracy, "auc": auc, "parameters": model.count_params(), "train_s": train_s,
                  "seconds_per_epoch": history.history["seconds_per_epoch"],
                  "train_accuracy": [float(v) for v in history.history["accuracy"]]}
        if args.task == "maps":
            permuted_accuracy, permuted_auc, permuted = evaluate(model, permute_energies(x_test, seed=args.seed), y_test)
            result.update(permuted_accuracy=permuted_accuracy, permuted_auc=permuted_auc,
                          permutation_drop=paired_difference(correct[kernel], (permuted > 0.5) == y_test))
        result["minus"] = {other: paired_difference(correct[kernel], correct[other])
                           for other in list(baselines) + [k for k in args.kernels if k in kernels]}
        kernels[kernel] = result
        print(f"  {name} [{args.task}] kernel {kernel}: accuracy {accuracy:.4f}, AUC {auc:.4f}; minus "
              + ", ".join(f"{o} {d['difference']:+.4f} (SE {d['se']:.4f})" for o, d in result["minus"].items()),
              flush=True)
    timings["train_s"] = sum(r["train_s"] for r in kernels.values())
    timings["seconds_per_epoch"] = kernels[args.kernels[0]]["seconds_per_epoch"]
    first = kernels[args.kernels[0]]
    best = max(baselines, key=lambda k: baselines[k]["accuracy"])
    return {
        "setting": name, "task": args.task, "params": json.loads(params.to_json()), "seed": args.seed,
        "energy_scaling": energy_scaling, "energy_deflection_deg_eev": options["energy_deflection_deg_eev"],
        "n_train": len(x_train), "n_test": len(x_test), "epochs": args.epochs, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "fast": args.fast, "n_classical_train": n_classical,
        "dgcnn": {"accuracy": first["accuracy"], "auc": first["auc"],
                  "permuted_accuracy": first.get("permuted_accuracy", float("nan")),
                  "permuted_auc": first.get("permuted_auc", float("nan")),
                  "train_accuracy": first["train_accuracy"]},
        "kernels": kernels, "classical": baselines, "best_classical": best,
        "gap": first["accuracy"] - baselines[best]["accuracy"], "timings": timings,
    }


HEADER = ("| setting | DGCNN acc | DGCNN AUC | permuted E acc | permuted E AUC | pair-count acc/AUC "
          "| multiplet LR acc/AUC | energy-aware LR acc/AUC | DGCNN - best classical | time (sim/classical/train) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def row(result):
    d, c, t = result["dgcnn"], result["classical"], result["timings"]
    return (f"| {result['setting']} | {d['accuracy']:.3f} | {d['auc']:.3f} | {d['permuted_accuracy']:.3f} "
            f"| {d['permuted_auc']:.3f} | {c['pair_count']['accuracy']:.3f}/{c['pair_count']['auc']:.3f} "
            f"| {c['multiplet']['accuracy']:.3f}/{c['multiplet']['auc']:.3f} "
            f"| {c['energy']['accuracy']:.3f}/{c['energy']['auc']:.3f} | {result['gap']:+.3f} "
            f"| {t['simulate_s']:.0f}/{t['classical_s']:.0f}/{t['train_s']:.0f} s |")


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported anywhere
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate_gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS),
                        help=f"from {sorted(SETTINGS)}; append {NO_SCALE} for the model without energy scaling, "
                             "+eref<D> for another EnergyScaling reference field")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                        help="override parameters of every setting, e.g. --set smearing_deg_eev=30")
    parser.add_argument("--n-train", type=int, default=40000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-classical-train", type=int, default=0,
                        help="training maps for the regressions (0: all of them, as the DGCNN)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="start of the cosine decay")
    parser.add_argument("--kernels", nargs="+", default=["auto"],
                        help="first-EdgeConv kernels to train on the same maps (crsky.models.KERNELS); the first "
                             "fills the table's DGCNN columns")
    parser.add_argument("--task", choices=("maps", "ordering"), default="maps",
                        help="maps: signal vs isotropic; ordering: signal maps vs the same maps, energies permuted")
    parser.add_argument("--fast", action="store_true",
                        help="train with crsky.training.fast_options() (the sky graph once per map on a CPU)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--processes", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--time-limit", type=float, default=400.0,
                        help="seconds: start no further setting once this much time has passed")
    parser.add_argument("--no-energy-scaling", action="store_true", help="the textbook's model, energy as given")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--json", default="calibration.json")
    args = parser.parse_args(argv)
    overrides = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
    settings = [(name, parameters(name, overrides)) for name in args.settings]  # fail early on a bad name
    for name in args.settings:
        model_options(name)
    from crsky.models import KERNELS

    if any(kernel not in KERNELS for kernel in args.kernels):
        raise SystemExit(f"--kernels must be from {KERNELS}, got {args.kernels}")

    import keras

    devices = _devices()
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, devices {devices}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}; {args.n_train} training / "
          f"{args.n_test} test maps, {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}", flush=True)
    begin = time.perf_counter()
    results, rows = [], []
    for name, params in settings:
        elapsed = time.perf_counter() - begin
        if results and elapsed > args.time_limit:
            print(f"time limit: {elapsed:.0f} s > {args.time_limit:.0f} s, skipping {name} and later settings")
            break
        result = run_setting(name, params, args)
        result["devices"] = devices
        results.append(result)
        rows.append(row(result))
        print(HEADER.splitlines()[0] if len(rows) == 1 else "", rows[-1], sep="\n", flush=True)
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    print(f"\n{HEADER}\n" + "\n".join(rows))
    print(f"total {time.perf_counter() - begin:.0f} s; results in {args.json}")


def _devices():
    try:
        import jax

        return [str(d) for d in jax.devices()]
    except Exception as error:  # another backend
        return [f"unknown ({type(error).__name__})"]


if __name__ == "__main__":
    main()
