"""How the scale of the energy channel changes what the reference DGCNN learns.

Trains the reference DGCNN on the same maps with EnergyScaling at several reference
fields D_ref (the energy channel becomes radians(D_ref / 40 EeV) x (40 EeV / E - mean), of
spread 7.07e-5 x D_ref: 0.023 for D_ref = 320 deg EeV, 1.0 for D_ref = 14,138, which is
the standardised 40 EeV / E), or without it (D_ref 0: the textbook's model), and prints
training accuracy by epoch, test accuracy and AUC with the energies as they are and
permuted within each map.

    python -m bench.energy_scaling --preset easy --n-train 4000 --epochs 3 --erefs 0 14138 320
"""

import argparse
import time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.energy_scaling", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="easy")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=3, help="simulation seed")
    parser.add_argument("--erefs", type=float, nargs="+", default=[0.0, 14138.0, 320.0],
                        help="reference fields in deg EeV; 0 = no EnergyScaling")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from crsky.simulate import simulate
    from crsky.training import evaluate, permute_energies, train_reference

    sim = simulate(args.preset, args.n_train + args.n_test, seed=args.seed)
    x, y = sim["data"], sim["label"]
    n = args.n_train
    print(f"{args.preset}: {n} training / {args.n_test} test maps, {args.epochs} epochs, batch {args.batch_size}, "
          f"keras {keras.__version__} on {keras.backend.backend()}")
    for eref in args.erefs:
        keras.utils.set_random_seed(1)
        start = time.perf_counter()
        model, history = train_reference(x[:n], y[:n], epochs=args.epochs, batch_size=args.batch_size, verbose=0,
                                         energy_scaling=eref > 0, energy_deflection_deg_eev=eref or 320.0)
        accuracy, auc, _ = evaluate(model, x[n:], y[n:])
        p_accuracy, p_auc, _ = evaluate(model, permute_energies(x[n:]), y[n:])
        print(f"D_ref {eref:7.0f}: train acc {np.round(history.history['accuracy'], 3).tolist()}, test acc "
              f"{accuracy:.3f} AUC {auc:.3f}, permuted energies {p_accuracy:.3f} / {p_auc:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
