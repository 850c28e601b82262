"""Benchmark: notebook 3's CPU training recipe against the one it replaced, as ratios of the same run.

1. Speed of each lever (``fit``, one epoch of the same small training set per round, after a
   warm-up epoch; the configurations take turns, round after round, so that a busy machine
   slows them alike; medians of the rounds, wall and process CPU time per map of the steps
   after an epoch's first, so that ``fit``'s set-up per call is left out, see StepClock):

   old            the reference model (each EdgeConv searches its own neighbours), batch 32,
                  XLA: the step of the CPU recipe that the current one replaced (a plain fit)
   no XLA         the same without XLA (TensorFlow's graph mode)
   shared graph   the sky graph searched once per step for both layers (NeighborIndices)
   fixed graph    the sky graph computed once per map before training (with_graph_inputs),
                  the graph's own time reported apart: the new recipe's step in notebook 3
   dpp            the kernels' first Dense per point (dense_per_point)
   fixed+dpp      both: the new recipe's step in crsky.main
   b16            the old step at batch 16
   dpp b16        the first Dense per point, batch 16
   fixed+dpp b16  both, batch 16

2. Time to accuracy: the old recipe and the new ones trained from the same seed on the same
   maps (a fixed small data set; ``--size cpu``: the notebooks' CPU size, about 25 minutes on 2 cores),
   each timed as crsky.main times training (build, graph, fit with validation), then tested:

   old            batch 32, 5 epochs, cosine from 3e-3, a plain fit: the CPU size before
   new            crsky.experiment.SIZES["cpu"] (batch 32, 3 epochs, cosine from 6e-3) with the
                  sky graph once per map, as notebook 3 trains it (training.fit_unless_grading)
   new+           the same with the first Dense per point too, as crsky.main trains it
                  (crsky.training.FAST_OPTIONS)

   The trainings take turns epoch by epoch (the one least far along goes next).

    python -m bench.training_recipes                    # both parts, about 10 minutes on 2 cores
    python -m bench.training_recipes --skip-accuracy    # the levers only
    python -m bench.training_recipes --size cpu --skip-levers   # the end-to-end comparison (about 25 minutes)

Run it with nothing else of yours running. The training recipes themselves: crsky.training.
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from crsky import experiment  # noqa: E402
from crsky.training import FAST_OPTIONS  # noqa: E402

# name: (build_reference_model options, fixed graph, batch size, jit_compile)
LEVERS = {
    "old": ({}, False, 32, True),
    "no XLA": ({}, False, 32, False),
    "shared graph": ({"sky_graph": "shared"}, False, 32, True),
    "fixed graph": ({}, True, 32, True),
    "dpp": ({"dense_per_point": True}, False, 32, True),
    "fixed+dpp": ({"dense_per_point": True}, True, 32, True),
    "b16": ({}, False, 16, True),
    "dpp b16": ({"dense_per_point": True}, False, 16, True),
    "fixed+dpp b16": ({"dense_per_point": True}, True, 16, True),
}

# name: train_reference options. "old" is the CPU size before (5 epochs from 3e-3, a plain fit);
# "new" crsky.experiment.SIZES["cpu"] as notebook 3 trains it (the sky graph once per map, see
# crsky.training.fit_unless_grading); "new+" the same as crsky.main trains it
# (crsky.training.FAST_OPTIONS: also the first Dense per point, the same arithmetic).
_CPU = experiment.SIZES["cpu"]
_NEW = {"batch_size": _CPU.batch_size, "epochs": _CPU.epochs, "learning_rate": _CPU.learning_rate}
RECIPES = {
    "old": {"batch_size": 32, "epochs": 5, "learning_rate": 3e-3},
    "new": {**_NEW, "fixed_graph": True},
    "new+": {**_NEW, **FAST_OPTIONS},
}


def load(n_maps):
    """The course's preset and seed, ``n_maps`` maps, split the notebooks' way."""
    from crsky.dataset import load_sky_maps

    return experiment.split(load_sky_maps(n_maps=n_maps, progress=False))


class StepClock(keras.callbacks.Callback):
    """Wall and process CPU time of an epoch's training steps after its first: from the end
    of step 1 to the end of the last full step. ``fit``'s own set-up per call (the data
    adapter, and a retrace of the step when several models take turns, about 2 s on
    2 cores) and the first step's compilations are left out: a training of several
    epochs pays them once."""

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter(), time.process_time()
        if batch == 0:
            self.start, self.steps = now, 0
        else:
            self.wall, self.cpu = now[0] - self.start[0], now[1] - self.start[1]
            self.steps = batch


def levers(x_train, y_train, rounds, warmup_maps):
    """ms/map and ms/step of each configuration of LEVERS on ``x_train`` (one fit epoch per round)."""
    from crsky.models import build_reference_model, model_inputs
    from crsky.training import compile_stable
    from edgeconv import neighbor_indices, with_graph_inputs

    inputs = model_inputs(x_train)
    labels = keras.utils.to_categorical(y_train, 2)
    results = {}
    start = time.perf_counter()
    graph = neighbor_indices(inputs[0], 8)
    graph_ms = 1000 * (time.perf_counter() - start) / len(x_train)
    start = time.perf_counter()
    neighbor_indices(inputs[0], 8, engine="keras")
    graph_keras_ms = 1000 * (time.perf_counter() - start) / len(x_train)
    runs = {}
    for name, (options, fixed, batch_size, jit) in LEVERS.items():
        keras.utils.set_random_seed(1)
        model = build_reference_model(bn_momentum=0.9, **options)
        data = inputs
        if fixed:
            model, _ = with_graph_inputs(model)
            data = inputs + [graph]
        compile_stable(model, 10_000, jit_compile=jit)
        model.fit([a[:warmup_maps] for a in data], labels[:warmup_maps], batch_size=batch_size, epochs=1, verbose=0)
        runs[name] = (model, data, batch_size)
        results[name] = {"wall": [], "cpu": []}
    for _ in range(rounds):
        for name, (model, data, batch_size) in runs.items():
            clock = StepClock()
            model.fit(data, labels, batch_size=batch_size, epochs=1, verbose=0, callbacks=[clock])
            maps = clock.steps * batch_size
            results[name]["wall"].append(1000 * clock.wall / maps)
            results[name]["cpu"].append(1000 * clock.cpu / maps)
    table = {}
    for name, r in results.items():
        batch_size = runs[name][2]
        table[name] = {"ms_per_map": float(np.median(r["wall"])), "cpu_ms_per_map": float(np.median(r["cpu"])),
                       "ms_per_step": float(np.median(r["wall"])) * batch_size, "batch_size": batch_size}
    return table, {"graph_ms_per_map": graph_ms, "graph_keras_ms_per_map": graph_keras_ms}


def time_to_accuracy(split, seed, recipes=None):
    """Each recipe of ``recipes`` (default RECIPES) trained from ``seed``, the trainings taking
    turns epoch by epoch (the one least far along goes next), so that a busy machine slows them
    alike. Returns per recipe: training seconds (wall, process CPU; set-up, graph and validation
    included), test accuracy and AUC, validation accuracy per epoch."""
    from crsky.training import ReferenceTraining, evaluate

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split
    recipes = RECIPES if recipes is None else recipes
    runs, clocks = {}, {}
    for name, recipe in recipes.items():
        keras.utils.set_random_seed(seed)
        cpu = time.process_time()
        runs[name] = ReferenceTraining(x_train, y_train, x_val, y_val, **recipe)
        clocks[name] = time.process_time() - cpu
    while True:
        pending = [name for name, run in runs.items() if run.epoch < run.epochs]
        if not pending:
            break
        name = min(pending, key=lambda n: ((runs[n].epoch + 1) / runs[n].epochs, list(runs).index(n)))
        cpu = time.process_time()
        runs[name].fit(until=runs[name].epoch + 1, verbose=0)
        clocks[name] += time.process_time() - cpu
        print(f"    {name:6s} epoch {runs[name].epoch}/{runs[name].epochs}: {runs[name].seconds:7.1f} s so far, "
              f"validation accuracy {runs[name].history.history['val_accuracy'][-1]:.4f}", flush=True)
    out = {}
    for name, run in runs.items():
        accuracy, auc, _ = evaluate(run.model, x_test, y_test)
        out[name] = {"train_s": run.seconds, "train_cpu_s": clocks[name], "graph_s": run.graph_seconds,
                     "test_accuracy": accuracy, "test_auc": auc,
                     "val_accuracy": [round(v, 4) for v in run.history.history["val_accuracy"]], **recipes[name]}
        print(f"  {name:6s} {run.seconds:7.1f} s (CPU {clocks[name]:7.1f} s; graph {run.graph_seconds:.1f} s)   "
              f"test accuracy {accuracy:.4f}, AUC {auc:.4f}   validation {out[name]['val_accuracy']}", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(experiment.SIZES), help="part 2 at this notebook size "
                        "(default: a fixed small data set of --n-maps maps)")
    parser.add_argument("--n-maps", type=int, default=6000, help="maps of the small data set (default 6000)")
    parser.add_argument("--lever-maps", type=int, default=768, help="training maps per round in part 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-levers", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} CPU cores, preset "
          f"{experiment.PRESET!r}", flush=True)
    report = {"argv": vars(args)}
    n_maps = experiment.SIZES[args.size].n_maps if args.size else args.n_maps
    split = load(max(n_maps, args.lever_maps + 100))
    if not args.skip_levers:
        x_train, y_train = split.train
        n = min(args.lever_maps, len(x_train))
        n -= n % 32  # full batches of 16 and 32 only (StepClock counts full steps)
        print(f"\n1. levers: fit, {n} training maps per round, {args.rounds} rounds in turn (medians)", flush=True)
        table, graph = levers(x_train[:n], y_train[:n], args.rounds, warmup_maps=64)
        report["levers"], report["graph"] = table, graph
        base = table["old"]
        for name, r in table.items():
            print(f"  {name:13s} batch {r['batch_size']:3d}  {r['ms_per_step']:7.1f} ms/step  {r['ms_per_map']:6.2f} ms/map"
                  f"  (CPU {r['cpu_ms_per_map']:6.2f})   {r['ms_per_map'] / base['ms_per_map']:.2f}x "
                  f"(CPU {r['cpu_ms_per_map'] / base['cpu_ms_per_map']:.2f}x)")
        print(f"  the sky graph once per map: {graph['graph_ms_per_map']:.2f} ms/map (k-d tree), "
              f"{graph['graph_keras_ms_per_map']:.2f} ms/map (knn_indices with XLA)")
    if not args.skip_accuracy:
        (x_train, _), (x_val, _), (x_test, _) = split
        print(f"\n2. time to accuracy: {len(x_train)} training, {len(x_val)} validation, {len(x_test)} test maps, "
              f"seed {args.seed}", flush=True)
        result = time_to_accuracy(split, args.seed)
        report["recipes"] = result
        old = result["old"]
        for name, new in result.items():
            if name != "old":
                print(f"  {name} / old: training time {new['train_s'] / old['train_s']:.2f}x "
                      f"(CPU {new['train_cpu_s'] / old['train_cpu_s']:.2f}x), test accuracy "
                      f"{new['test_accuracy']:.4f} vs {old['test_accuracy']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
