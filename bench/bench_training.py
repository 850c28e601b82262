"""Benchmark: training speed of the reference DGCNN per Keras backend.

Trains the textbook's reference model (4,770 parameters) for a fixed number of steps
at batch 64 on random isotropic sky maps and prints ms/step and the peak resident
memory of each configuration, each in its own process (a Keras backend is chosen at
import time), with ratios against the first configuration of the same run.

    python -m bench.bench_training                 # all configurations available
    python -m bench.bench_training --steps 20 --configs jax tensorflow+xla
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    # name: (KERAS_BACKEND, compile options)
    "tensorflow": ("tensorflow", {"jit_compile": False}),
    "tensorflow+xla": ("tensorflow", {"jit_compile": True}),
    "tensorflow-eager": ("tensorflow", {"run_eagerly": True}),
    "jax": ("jax", {"jit_compile": True}),
    "torch": ("torch", {"jit_compile": False}),
    # The same model with bench.naive_edgeconv's layer: the baseline the ratios show.
    "naive-tensorflow+xla": ("tensorflow", {"jit_compile": True}),
    "naive-jax": ("jax", {"jit_compile": True}),
}
BACKEND_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_configs():
    """Every configuration whose backend is installed, but eager and the naive ones."""
    return [name for name, (backend, _) in CONFIGS.items()
            if name != "tensorflow-eager" and not name.startswith("naive")
            and importlib.util.find_spec(BACKEND_MODULE[backend])]


def worker(config, steps, warmup, batch_size):
    """Runs in a child process with KERAS_BACKEND set; prints one JSON line."""
    import resource

    import numpy as np
    import keras

    from crsky.models import build_reference_model

    _, options = CONFIGS[config]
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(batch_size, 500, 3))
    xyz /= np.linalg.norm(xyz, axis=-1, keepdims=True)
    energy = rng.uniform(0.956, 0.985, size=(batch_size, 500, 1))
    inputs = [xyz.astype("float32"), np.concatenate([energy, xyz], -1).astype("float32")]
    labels = keras.utils.to_categorical(rng.integers(0, 2, batch_size), 2)

    if config.startswith("naive-"):
        from bench.naive_edgeconv import build_naive_reference_model

        model = build_naive_reference_model()
    else:
        model = build_reference_model()
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(3e-3, weight_decay=1e-4),
        metrics=["accuracy"],
        **options,
    )
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(inputs, labels)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(inputs, labels)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    device, device_peak_mb = gpu_peak_memory_mb()
    print(json.dumps({
        "config": config,
        "ms_per_step": 1000 * elapsed / steps,
        "warmup_s": first,
        "peak_rss_mb": peak_mb,
        "device": device,
        "gpu_peak_mb": device_peak_mb,
        "loss": float(np.ravel(loss)[0]),
    }))


def gpu_peak_memory_mb():
    """``(device name, peak GPU memory in MB)`` of this process, ``("cpu", None)`` without a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            return device.device_kind, (device.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**20
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(), torch.cuda.max_memory_allocated() / 2**20
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return "GPU:0", tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return "cpu", None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=None,
                        help="configurations to run (default: every one whose backend is installed, "
                             "but eager and the naive ones)")
    parser.add_argument("--worker", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.batch_size)
        return

    configs = args.configs or default_configs()
    print(f"reference DGCNN, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up; "
          f"{os.cpu_count()} CPU cores")
    results = []
    for config in configs:
        backend, _ = CONFIGS[config]
        if not importlib.util.find_spec(BACKEND_MODULE[backend]):
            print(f"{config:18s} skipped: {BACKEND_MODULE[backend]} is not installed")
            continue
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, "-m", "bench.bench_training", "--worker", config, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
        run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0 or not lines:
            print(f"{config:18s} FAILED (exit {run.returncode}):\n{run.stderr[-2000:]}")
            continue
        results.append(json.loads(lines[-1]))
        r = results[-1]
        gpu = f"   {r['device']}: peak {r['gpu_peak_mb']:.0f} MB" if r.get("gpu_peak_mb") is not None else ""
        print(f"{config:18s} {r['ms_per_step']:8.2f} ms/step   warm-up {r['warmup_s']:6.1f} s   "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB{gpu}", flush=True)
    if len(results) > 1:
        base = results[0]
        print(f"\nratio of ms/step to {base['config']} (same run):")
        for r in results:
            print(f"  {r['config']:18s} {r['ms_per_step'] / base['ms_per_step']:.2f}x")


if __name__ == "__main__":
    main()
