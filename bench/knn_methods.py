"""Benchmark: ways to find the k nearest neighbours inside EdgeConv, alone and in training.

On an H200 the kNN search (``top_k`` over the ``(batch, P, P)`` distance matrix) took most
of the reference model's step (bench/gpu_check.py: 0.75 ms for one layer's kNN against a
2.6 ms training step). This compares, on the same inputs and checked to select the same
neighbours as ``top_k``:

    top_k       edgeconv.knn_indices(method="top_k"): keras.ops.top_k on the negated distances;
    select      edgeconv.knn_indices(method="select"): k rounds of two min reductions, each
                taking the next (distance, index) pair in lexicographic order (exact, ties too);
    argmin      the same with one argmin per round (exact where argmin takes the first minimum:
                JAX, NumPy);
    chunked     top_k within chunks of the row, then top_k among the chunk winners;
    argsort     a full argsort, sliced.

Then it trains the reference model with each of ``--train`` (an EdgeConv subclass whose
``find_neighbors`` uses the method) for a few epochs, as bench/gpu_check.py trains its
recipes, and prints s/epoch and test accuracy.

    KERAS_BACKEND=jax python -m bench.knn_methods                # GPU machine
    KERAS_BACKEND=jax python -m bench.knn_methods --n-maps 1500 --epochs 1 --calls 3
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import edgeconv  # noqa: E402

distances = edgeconv.pairwise_distances


def knn_argmin(points, k):
    """k rounds of one argmin each, the chosen column masked with +inf between rounds."""
    distance = distances(points)
    position = ops.arange(ops.shape(distance)[-1])
    chosen = []
    for _ in range(k):
        index = ops.argmin(distance, axis=-1)  # (B, P)
        chosen.append(index)
        distance = ops.where(position == ops.expand_dims(index, -1), float("inf"), distance)
    return ops.stack(chosen, axis=-1)


def knn_chunked(points, k, chunks=20):
    distance = distances(points)
    shape = ops.shape(distance)
    num_points = shape[2]
    width = -(-num_points // chunks)
    padded = ops.pad(distance, [(0, 0), (0, 0), (0, chunks * width - num_points)], constant_values=float("inf"))
    blocks = ops.reshape(padded, (shape[0], shape[1], chunks, width))
    values, local = ops.top_k(-blocks, k=min(k, width), sorted=True)  # (B, P, chunks, k)
    base = ops.reshape(ops.arange(chunks) * width, (1, 1, chunks, 1))
    values = ops.reshape(values, (shape[0], shape[1], -1))
    candidates = ops.reshape(local + base, (shape[0], shape[1], -1))
    _, best = ops.top_k(values, k=k, sorted=True)
    return ops.take_along_axis(candidates, best, axis=-1)


def knn_argsort(points, k):
    return ops.argsort(distances(points), axis=-1)[..., :k]


METHODS = {
    "top_k": lambda points, k: edgeconv.knn_indices(points, k, method="top_k"),
    "select": lambda points, k: edgeconv.knn_indices(points, k, method="select"),
    "argmin": knn_argmin,
    "chunked": knn_chunked,
    "argsort": knn_argsort,
}
TOP_K = METHODS["top_k"]


def layer_using(method):
    """An EdgeConv class that finds neighbours with ``METHODS[method]``."""

    class BenchEdgeConv(edgeconv.EdgeConv):
        def find_neighbors(self, points):
            return METHODS[method](points, self.next_neighbors)

    BenchEdgeConv.__name__ = f"EdgeConv_{method}"
    return BenchEdgeConv


def timed(fn, inputs, calls):
    """Median ms per call over 3 rounds of ``calls`` calls, after one warm-up call."""
    ops.convert_to_numpy(fn(inputs[0]))
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for i in range(calls):
            out = fn(inputs[i % len(inputs)])
        ops.convert_to_numpy(out)
        rounds.append(1000 * (time.perf_counter() - start) / calls)
    return float(np.median(rounds))


def compiled(fn, k):
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(lambda p: fn(p, k))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda p: fn(p, k), jit_compile=True)
    return lambda p: fn(p, k)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    parser.add_argument("--train", nargs="*", choices=sorted(METHODS), default=["top_k", "select"],
                        help="methods to train the reference model with")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--n-maps", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    devices = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        devices = ", ".join(d.device_kind for d in jax.devices())
    print(f"keras {keras.__version__} ({keras.backend.backend()}), devices: {devices}", flush=True)
    rng = np.random.default_rng(0)
    k = 8
    print(f"\nkNN alone, k = {k}, batch {args.batch_size}, 500 points (ms per call; 'same' = same "
          f"neighbour sets as top_k on 4 random batches)")
    for channels in (3, 32):
        inputs = []
        for _ in range(4):
            x = rng.normal(size=(args.batch_size, 500, channels)).astype("float32")
            if channels == 3:
                x /= np.linalg.norm(x, axis=-1, keepdims=True)
            else:
                x = np.maximum(x, 0)  # like features after ReLU: exact ties at zero
                x[:, :50] = 0  # fifty points with identical features
            inputs.append(ops.convert_to_tensor(x))
        reference = [np.sort(ops.convert_to_numpy(compiled(TOP_K, k)(x)), -1) for x in inputs]
        for name in args.methods:
            try:
                fn = compiled(METHODS[name], k)
                same = all(np.array_equal(np.sort(ops.convert_to_numpy(fn(x)), -1), r) for x, r in zip(inputs, reference))
                print(f"  {channels:2d} channels  {name:8s} {timed(fn, inputs, args.calls):8.3f} ms   same: {same}", flush=True)
            except Exception as error:
                print(f"  {channels:2d} channels  {name:8s} FAILED {type(error).__name__}: {str(error)[:200]}", flush=True)

    if not args.train:
        return
    from bench.gpu_check import train_variant
    from crsky import experiment
    from crsky.simulate import simulate

    sim = simulate(experiment.PRESET, args.n_maps, seed=experiment.DATA_SEED, processes=min(8, os.cpu_count() or 1))
    (x_train, y_train), _, (x_test, y_test) = experiment.split(sim, validation_fraction=0)
    print(f"\nreference model, {len(x_train)} training maps, batch {args.batch_size}, {args.epochs} epochs")
    for name in args.train:
        try:
            r = train_variant(x_train, y_train, x_test, y_test, args.epochs, args.batch_size, 25, "float32", 3e-3,
                              layer_class=layer_using(name))
            print(f"  {name:8s} {r['s_per_epoch']:6.2f} s/epoch ({1000 * r['s_per_epoch'] / r['steps_per_epoch']:.2f} ms/step; "
                  f"first {r['s_per_epoch_first']:.1f} s)   test accuracy {r['test_accuracy']:.4f}, "
                  f"AUC {r['test_auc']:.4f}", flush=True)
        except Exception as error:
            print(f"  {name:8s} FAILED {type(error).__name__}: {str(error)[:300]}", flush=True)

if __name__ == "__main__":
    main()
