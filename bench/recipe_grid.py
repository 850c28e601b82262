"""Test accuracy of training recipes (batch size, epochs, learning rate), several seeds each, at
one of the notebooks' sizes: which recipe reaches a given accuracy with the fewest map-passes.

The recipes train the same model with the same arithmetic on any backend and device, so the
search can run where training is fast (a GPU); what each recipe costs on 2 CPU cores comes
from ``bench.training_recipes``. A recipe is written ``b<batch> e<epochs> lr<rate>``, with
optional ``w<warm-up steps>`` and ``m<BatchNormalization momentum>`` (default 0.9).

    python -m bench.recipe_grid --recipes "b32 e5 lr3e-3" "b16 e3 lr3e-3" --seeds 1 2
    KERAS_BACKEND=jax python -m bench.recipe_grid --device-data ...   # on a GPU
"""

import argparse
import json
import os
import time


def parse_recipe(text):
    """``"b16 e3 lr3e-3 w200 m0.9"`` -> dict(batch_size, epochs, learning_rate, warmup_steps, bn_momentum)."""
    recipe = {"warmup_steps": 0, "bn_momentum": 0.9}
    keys = {"b": ("batch_size", int), "e": ("epochs", int), "lr": ("learning_rate", float),
            "w": ("warmup_steps", int), "m": ("bn_momentum", float)}
    for token in text.split():
        prefix = token[:2] if token.startswith("lr") else token[:1]
        if prefix not in keys:
            raise ValueError(f"unknown recipe token {token!r} in {text!r}")
        name, kind = keys[prefix]
        recipe[name] = kind(token[len(prefix):])
    missing = {"batch_size", "epochs", "learning_rate"} - set(recipe)
    if missing:
        raise ValueError(f"recipe {text!r} lacks {sorted(missing)}")
    return recipe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--size", default="cpu", help="a size of crsky.experiment.SIZES (its number of maps)")
    parser.add_argument("--n-maps", type=int, help="instead of the size's number of maps")
    parser.add_argument("--plain", action="store_true",
                        help="train the plain model (default: the sky graph once per map and the first Dense "
                             "per point, the same arithmetic, faster)")
    parser.add_argument("--device-data", action="store_true", help="feed fit from data held on the device")
    parser.add_argument("--out", help="append one JSON line per run to this file")
    args = parser.parse_args()
    recipes = {text: parse_recipe(text) for text in args.recipes}

    import keras

    from crsky import experiment
    from crsky.simulate import simulate
    from crsky.training import evaluate, train_reference

    n_maps = args.n_maps or experiment.SIZES[args.size].n_maps
    sim = simulate(experiment.PRESET, n_maps, seed=experiment.DATA_SEED, processes=min(8, os.cpu_count() or 1))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = experiment.split(sim)
    print(f"keras {keras.__version__} ({keras.backend.backend()}); preset {experiment.PRESET!r}, {len(x_train)} "
          f"training, {len(x_val)} validation, {len(x_test)} test maps", flush=True)
    options = {} if args.plain else {"fixed_graph": True, "dense_per_point": True}
    for text, recipe in recipes.items():
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            start = time.perf_counter()
            model, history = train_reference(x_train, y_train, x_val, y_val, verbose=0,
                                             device_data=args.device_data, **recipe, **options)
            seconds = time.perf_counter() - start
            accuracy, auc, _ = evaluate(model, x_test, y_test)
            row = {"recipe": text, "seed": seed, "test_accuracy": round(accuracy, 4), "test_auc": round(auc, 4),
                   "val_accuracy": [round(v, 4) for v in history.history["val_accuracy"]],
                   "map_passes": recipe["epochs"] * len(x_train), "seconds": round(seconds, 1),
                   "backend": keras.backend.backend(), "n_train": len(x_train), **options}
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
