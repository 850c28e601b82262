"""GPU check, sized for one H100/H200 run (about 5 minutes): simulate the default data
set there, train the reference DGCNN with Keras on JAX, compare training recipes (batch size,
steps per execution, mixed precision), time the training step without Keras' loop around it,
and train a plain PyTorch dense DGCNN of the same architecture (the peer) in the same run.

    KERAS_BACKEND=jax python -m bench.gpu_check                     # on the GPU machine
    KERAS_BACKEND=jax python -m bench.gpu_check --n-maps 1500 --epochs 1 --peer-epochs 1 --floor-steps 4
                                                                     # CPU smoke test

``--device-data`` adds ``fit`` fed from the training set held on the GPU
(``crsky.training.DeviceBatches``), with the notebooks' model and with the sky graph
computed once per map and the first Dense per point (``fixed_graph``, ``dense_per_point``),
each next to its own ``lax.scan`` floor and Keras' plain ``fit`` of the same run. Alone it
takes about 2 minutes on an H200 (40,000 training maps, 3 epochs per run):

    KERAS_BACKEND=jax python -m bench.gpu_check --device-data --variants b64 --epochs 3 --no-peer

bench/gpu_check.sh runs it on a GPU machine with the Keras wheels at hand (.whl/). Each
part is timed on its own; a part that fails is reported and the others go on. A summary table
comes last, and ``--json`` writes every figure to a file.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from crsky import experiment  # noqa: E402

# name: (batch size, steps per execution, dtype policy, learning rate). The learning rate
# grows with the square root of the batch size.
VARIANTS = {
    "b64": (64, 1, "float32", 3e-3),
    "b64 spe25": (64, 25, "float32", 3e-3),
    "b64 spe25 bf16": (64, 25, "mixed_bfloat16", 3e-3),
    "b256 spe10": (256, 10, "float32", 6e-3),
}

# fit fed from the device (--device-data), batch 64 as "b64": name -> train_reference options.
# "+graph": the sky graph computed once per map (fixed_graph); "+dpp": the kernels' first Dense
# per point (dense_per_point); "scan25": 25 training steps per call (scan_steps).
DEVICE_VARIANTS = {
    "b64 device data": {"device_data": True},
    "b64 device data +graph +dpp": {"device_data": True, "fixed_graph": True, "dense_per_point": True},
    "b64 device data scan25": {"device_data": True, "scan_steps": 25},
    "b64 device data scan25 +graph +dpp": {"device_data": True, "scan_steps": 25, "fixed_graph": True,
                                           "dense_per_point": True},
}


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch (s)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def train_variant(x_train, y_train, x_test, y_test, epochs, batch_size, steps_per_execution, policy,
                  learning_rate, **model_options):
    """Train the reference model from seed 1 with one recipe (``model_options`` go to the
    model builder); s/epoch (first and the median of the rest), test accuracy and AUC."""
    from crsky.training import evaluate, train_reference

    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(1)
        timer = EpochTimer()
        model, history = train_reference(x_train, y_train, epochs=epochs, batch_size=batch_size,
                                         learning_rate=learning_rate, verbose=2, callbacks=[timer],
                                         steps_per_execution=steps_per_execution, **model_options)
        accuracy, auc, _ = evaluate(model, x_test, y_test)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rest = timer.times[1:] or timer.times
    result = {"s_per_epoch_first": timer.times[0], "s_per_epoch": float(np.median(rest)),
              "steps_per_epoch": int(np.ceil(len(x_train) / batch_size)), "test_accuracy": accuracy,
              "test_auc": auc, "model": history.model}
    if "graph_seconds" in history.history and model_options.get("fixed_graph"):
        result["graph_s"] = history.history["graph_seconds"]
    return result


def floor_inputs(model, x_train, n):
    """The first ``n`` training maps as ``model`` takes them: ``[points, features]``, and the
    sky graph where the model reads it from an input (edgeconv.with_graph_inputs)."""
    from crsky.models import model_inputs
    from edgeconv import neighbor_indices

    inputs = model_inputs(x_train[:n])
    for tensor in model.inputs[2:]:  # "points_graph_<k>"
        inputs.append(neighbor_indices(inputs[0], int(tensor.shape[-1])))
    return inputs


def device_floor(model, x_train, y_train, batch_size, steps):
    """The training step of ``model`` without Keras' fit loop (JAX only): the same
    stateless step jitted and called from a Python loop, and ``steps`` steps inside one
    ``lax.scan`` with the data already on the device; plus the forward pass and the kNN of
    one batch. Returns ms per call."""
    import jax

    from edgeconv import knn_indices

    loss_object = keras.losses.BinaryCrossentropy()
    optimizer = model.optimizer

    def step(state, batch):
        trainable, non_trainable, optimizer_state = state
        *inputs, labels = batch

        def loss_fn(trainable):
            predictions, updated = model.stateless_call(trainable, non_trainable, list(inputs), training=True)
            return loss_object(labels, predictions), updated

        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return (trainable, non_trainable, optimizer_state), loss

    def state():
        return ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
                [v.value for v in optimizer.variables])

    n = steps * batch_size
    labels = keras.utils.to_categorical(y_train[:n], 2).astype("float32")
    data = tuple(jax.device_put(a.reshape(steps, batch_size, *a.shape[1:]))
                 for a in (*floor_inputs(model, x_train, n), labels))
    results = {}

    one_step = jax.jit(step)
    first = tuple(a[0] for a in data)
    out = one_step(state(), first)
    jax.block_until_ready(out)
    s = out[0]
    batches = [tuple(a[i] for a in data) for i in range(steps)]  # sliced before timing
    jax.block_until_ready(batches)
    start = time.perf_counter()
    for batch in batches:
        s, loss = one_step(s, batch)
    jax.block_until_ready(loss)
    results["jit step, python loop"] = 1000 * (time.perf_counter() - start) / steps

    scan = jax.jit(lambda s, xs: jax.lax.scan(step, s, xs))
    jax.block_until_ready(scan(state(), data))
    start = time.perf_counter()
    s, losses = scan(state(), data)
    jax.block_until_ready(losses)
    results["lax.scan over the steps"] = 1000 * (time.perf_counter() - start) / steps
    if not np.all(np.isfinite(np.asarray(losses))):
        raise ValueError("the scanned training produced non-finite losses")

    trainable, non_trainable, _ = state()
    forward = jax.jit(lambda *x: model.stateless_call(trainable, non_trainable, list(x), training=False)[0])
    knn = jax.jit(lambda p: knn_indices(p, 8))
    for name, fn in (("forward pass", lambda i: forward(*batches[i][:-1])),
                     ("kNN of one layer", lambda i: knn(batches[i][0]))):
        jax.block_until_ready(fn(0))
        start = time.perf_counter()
        for i in range(steps):
            out = fn(i)
        jax.block_until_ready(out)
        results[name] = 1000 * (time.perf_counter() - start) / steps
    return results


def torch_peer(x_train, y_train, x_test, y_test, epochs, batch_size, compile_model):
    """The same architecture in plain PyTorch (dense kNN, mean aggregation)."""
    import torch
    from torch import nn

    device = "cuda" if torch.cuda.is_available() else "cpu"

    class Kernel(nn.Sequential):
        def __init__(self, channels, nodes):
            layers, width = [], 2 * channels
            for _ in range(3):
                layers += [nn.Linear(width, nodes, bias=False), nn.ReLU(), nn.BatchNorm1d(nodes, momentum=0.1)]
                width = nodes
            super().__init__(*layers)

    class EdgeConv(nn.Module):
        def __init__(self, channels, nodes, k=8):
            super().__init__()
            self.kernel, self.k = Kernel(channels, nodes), k

        def forward(self, points, features):
            with torch.no_grad():
                distance = torch.cdist(points, points)
                distance.diagonal(dim1=1, dim2=2).fill_(float("inf"))
                index = distance.topk(self.k, largest=False).indices  # (B, P, k)
            batch, num_points, channels = features.shape
            neighbours = torch.gather(features.unsqueeze(1).expand(-1, num_points, -1, -1), 2,
                                      index.unsqueeze(-1).expand(-1, -1, -1, channels))
            centre = features.unsqueeze(2).expand_as(neighbours)
            edges = torch.cat([centre, centre - neighbours], dim=-1).reshape(-1, 2 * channels)
            return self.kernel(edges).reshape(batch, num_points, self.k, -1).mean(dim=2)

    class DGCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.conv3 = EdgeConv(4, 8), EdgeConv(8, 16), EdgeConv(16, 32)
            self.out = nn.Linear(32, 2)

        def forward(self, points, features):
            x = torch.relu(self.conv1(points, features))
            x = torch.relu(self.conv2(points, x))
            x = torch.relu(self.conv3(x, x))
            return self.out(x.mean(dim=1))

    def tensors(x):
        points = torch.tensor(x[..., :3], device=device)
        features = torch.tensor(np.concatenate([x[..., 3:], x[..., :3]], -1), device=device)
        return points, features

    torch.manual_seed(1)
    model = DGCNN().to(device)
    step = torch.compile(model) if compile_model else model
    points, features = tensors(x_train)
    labels = torch.tensor(y_train, dtype=torch.long, device=device)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    times = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x_train), device=device)
        for i in range(0, len(x_train), batch_size):
            batch = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(step(points[batch], features[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    model.eval()
    test_points, test_features = tensors(x_test)
    with torch.no_grad():
        predictions = torch.cat([model(test_points[i:i + 500], test_features[i:i + 500]).argmax(1)
                                 for i in range(0, len(x_test), 500)]).cpu().numpy()
    return {"s_per_epoch_first": times[0], "s_per_epoch": float(np.median(times[1:] or times)),
            "test_accuracy": float(np.mean(predictions == y_test)),
            "parameters": sum(p.numel() for p in model.parameters())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-maps", type=int, default=experiment.N_MAPS, help="maps simulated (the last fifth, at most 10,000, is the test set)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the reference run and of each recipe")
    parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--floor-steps", type=int, default=200, help="steps timed without Keras' loop (0: skip)")
    parser.add_argument("--peer-epochs", type=int, default=4)
    parser.add_argument("--no-compile", action="store_true", help="run the PyTorch peer eagerly only")
    parser.add_argument("--no-peer", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--device-data", action="store_true",
                        help="also fit from the training set held on the device (DeviceBatches), with the "
                             "notebooks' model and with the fast options, each with its lax.scan floor")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()

    from crsky.simulate import simulate

    report = {"argv": sys.argv[1:]}
    try:
        import jax

        report["devices"] = ", ".join(d.device_kind for d in jax.devices())
        report["jax"] = jax.__version__
    except Exception as error:
        report["devices"] = f"? ({error})"
    report["keras"] = f"{keras.__version__} ({keras.backend.backend()})"
    print(f"keras {report['keras']}, jax {report.get('jax')}, devices: {report['devices']}", flush=True)

    start = time.perf_counter()
    sim = simulate(experiment.PRESET, args.n_maps, seed=experiment.DATA_SEED, processes=min(8, os.cpu_count() or 1))
    report["simulate_s"] = time.perf_counter() - start
    print(f"simulated {args.n_maps} maps in {report['simulate_s']:.1f} s "
          f"({args.n_maps / report['simulate_s']:.0f} maps/s)", flush=True)
    (x_train, y_train), _, (x_test, y_test) = experiment.split(sim, validation_fraction=0)
    print(f"{len(x_train)} training maps, {len(x_test)} test maps", flush=True)

    def part(name, fn):
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as error:  # every part is reported; one failure does not stop the rest
            import traceback

            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
        result["wall_s"] = time.perf_counter() - start
        report[name] = result
        print(f"-> {name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in result.items() if k != "model"), flush=True)
        if args.json:  # after every part, so that a run cut short keeps what it measured
            with open(args.json, "w") as f:
                json.dump({k: ({kk: vv for kk, vv in v.items() if kk != "model"} if isinstance(v, dict) else v)
                           for k, v in report.items()}, f, indent=1, default=str)
        return result

    # 1. The recipe the notebooks use (batch 64, jit), then the alternatives, each trained
    #    from the same seed on all the training maps (the epoch the goal is stated for).
    runs = {}
    for name in args.variants:
        batch_size, spe, policy, lr = VARIANTS[name]
        runs[name] = part(f"recipe {name}", lambda: train_variant(x_train, y_train, x_test, y_test, args.epochs,
                                                                  batch_size, spe, policy, lr))

    # 2. The step without Keras' loop around it.
    reference = runs.get("b64", {})
    if args.floor_steps and keras.backend.backend() == "jax" and "model" in reference:
        part("device floor, batch 64", lambda: device_floor(reference["model"], x_train, y_train, 64, args.floor_steps))

    # 2b. fit fed from the device, then the floor of the fast model (the reference's is above).
    if args.device_data:
        for name, options in DEVICE_VARIANTS.items():
            runs[name] = part(f"recipe {name}", lambda: train_variant(x_train, y_train, x_test, y_test, args.epochs,
                                                                      64, 1, "float32", 3e-3, **options))
        fast = runs["b64 device data +graph +dpp"]
        if args.floor_steps and keras.backend.backend() == "jax" and "model" in fast:
            part("device floor, batch 64 +graph +dpp",
                 lambda: device_floor(fast["model"], x_train, y_train, 64, args.floor_steps))

    # 3. The PyTorch peer.
    for compile_model in ([] if args.no_peer else [False] if args.no_compile else [False, True]):
        part(f"pytorch peer ({'torch.compile' if compile_model else 'eager'})", lambda: torch_peer(
            x_train, y_train, x_test, y_test, args.peer_epochs, 64, compile_model))

    print(f"\n== summary ({report['devices']}; keras {report['keras']}; {len(x_train)} training maps, "
          f"{args.epochs} epochs)")
    print(f"{'run':50s} {'s/epoch':>8s} {'ms/step':>8s} {'1st epoch':>9s} {'test acc':>8s} {'AUC':>6s}")
    for name, r in report.items():
        if not isinstance(r, dict) or "s_per_epoch" not in r:
            if isinstance(r, dict) and "error" in r:
                print(f"{name:50s} FAILED: {r['error'][:60]}")
            continue
        steps = r.get("steps_per_epoch", int(np.ceil(len(x_train) / 64)))
        print(f"{name:50s} {r['s_per_epoch']:8.2f} {1000 * r['s_per_epoch'] / steps:8.2f} "
              f"{r['s_per_epoch_first']:9.1f} {r['test_accuracy']:8.4f} {r.get('test_auc', float('nan')):6.3f}")
    for floor_name in ("device floor, batch 64", "device floor, batch 64 +graph +dpp"):
        floor = report.get(floor_name, {})
        if floor:
            print(f"  {floor_name}:")
        for name, ms in floor.items():
            if name not in ("wall_s", "error"):
                extra = (f"   ({ms * len(x_train) / 64 / 1000:.2f} s/epoch of {len(x_train)} maps)"
                         if name == "lax.scan over the steps" else "")
                print(f"    {name:40s} {ms:8.3f} ms/call{extra}")


if __name__ == "__main__":
    main()
