"""Classical baselines only (no network), per setting: how well counting and the
energy-aware statistics do, and how much the energies carry.

For each setting, on ``--n-maps`` maps (the first ``--n-train`` train the regressions,
the rest are the test maps), prints one Markdown row:

- pair count, multiplet counts + logistic regression, energy-aware (multiplet counts,
  energy pair counts, multiplet 1/E correlations) + logistic regression: accuracy/AUC;
- the energy-aware regression when every map's energies are permuted (train and test):
  what it has left without the energy ordering;
- "ordering AUC": the energy-aware statistics telling signal maps from the same kind of
  maps with their energies permuted, i.e. how visible the energy ordering is.

    python -m bench.classical --settings textbook s5-f5-D600-S20
    python -m bench.classical --json '{"mine": {"n_sources": 5, "deflection_deg_eev": 600}}'
"""

import argparse
import json
import time

import numpy as np

from bench.calibrate_gpu import parameters
from crsky.baseline import (MAX_NEIGHBOURS, MULTIPLET_ANGLES_DEG, classical_features, evaluate_classical,
                            evaluate_pair_count)
from crsky.presets import SkyParameters
from crsky.simulate import simulate
from crsky.training import permute_energies


def run(name, params, n_maps, n_train, seed):
    start = time.perf_counter()
    sim = simulate(params, n_maps, seed=seed)
    x, y = sim["data"], sim["label"]
    train, test = slice(0, n_train), slice(n_train, None)
    n = len(MULTIPLET_ANGLES_DEG) * (MAX_NEIGHBOURS + 1)
    features = classical_features(x, "energy")
    pair = evaluate_pair_count(x[train], y[train], x[test], y[test], (2.0, 4.0, 6.0, 10.0))
    multiplet = evaluate_classical(None, y[train], None, y[test], features=(features[train, :n], features[test, :n]))
    energy = evaluate_classical(None, y[train], None, y[test], features=(features[train], features[test]))
    permuted = classical_features(permute_energies(x, seed=seed + 1), "energy")
    energy_permuted = evaluate_classical(None, y[train], None, y[test], features=(permuted[train], permuted[test]))
    # Signal maps as they are against signal maps with permuted energies.
    signal = x[y == 1]
    half = len(signal) // 2
    pairs = np.concatenate([signal[:half], permute_energies(signal[half:], seed=seed + 2)])
    is_real = np.r_[np.ones(half), np.zeros(len(signal) - half)]
    order = np.random.default_rng(seed).permutation(len(pairs))
    pair_features = classical_features(pairs[order], "energy")
    k = len(pairs) * 6 // 10
    ordering = evaluate_classical(None, is_real[order][:k], None, is_real[order][k:],
                                  features=(pair_features[:k], pair_features[k:]))
    result = {"setting": name, "params": json.loads(params.to_json()), "n_train": n_train,
              "n_test": n_maps - n_train, "seed": seed,
              **{key: {"accuracy": r["accuracy"], "auc": r["auc"]} for key, r in
                 (("pair_count", pair), ("multiplet", multiplet), ("energy", energy),
                  ("energy_permuted", energy_permuted))},
              "ordering_auc": ordering["auc"], "seconds": time.perf_counter() - start}
    return result


def row(r):
    cells = [f"{r[k]['accuracy']:.3f}/{r[k]['auc']:.3f}" for k in ("pair_count", "multiplet", "energy",
                                                                  "energy_permuted")]
    return f"| {r['setting']} | " + " | ".join(cells) + f" | {r['ordering_auc']:.3f} |"


HEADER = ("| setting | pair count acc/AUC | multiplet LR acc/AUC | energy-aware LR acc/AUC "
          "| energy-aware LR, permuted E | ordering AUC |\n| --- | --- | --- | --- | --- | --- |")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.classical", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="*", default=[], help="names from bench.calibrate_gpu.SETTINGS")
    parser.add_argument("--json", default=None, help='extra settings: {"name": {SkyParameters overrides}}')
    parser.add_argument("--n-maps", type=int, default=8000)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    settings = [(name, parameters(name)) for name in args.settings]
    if args.json:
        settings += [(name, SkyParameters(**{k: (tuple(map(tuple, v)) if k == "charges" else v)
                                             for k, v in values.items()}))
                     for name, values in json.loads(args.json).items()]
    print(f"{args.n_train} training / {args.n_maps - args.n_train} test maps per setting, seed {args.seed}")
    print(HEADER, flush=True)
    results = []
    for name, params in settings:
        results.append(run(name, params, args.n_maps, args.n_train, args.seed))
        print(row(results[-1]), flush=True)
        if args.out:
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
