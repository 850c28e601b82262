"""GPU check, sized for one lent H100/H200 run (about 5 minutes): simulate the default data
set there, train the reference DGCNN with Keras on JAX, and train a plain PyTorch dense
DGCNN of the same architecture (the peer) in the same run; print s/epoch and test accuracy.

    KERAS_BACKEND=jax python bench/gpu_check.py --epochs 4            # on the GPU machine
    KERAS_BACKEND=jax python bench/gpu_check.py --n-maps 2000 --epochs 1 --peer-epochs 1   # CPU smoke test

bench/gpu_check.sh runs it on the lent machine with the Keras wheels carried (.whl/).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def keras_run(x_train, y_train, x_test, y_test, epochs, batch_size):
    import keras

    from crsky.training import evaluate, train_reference

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times = getattr(self, "times", []) + [time.perf_counter() - self.start]

    timer = EpochTimer()
    n_val = len(x_train) // 10
    model, history = train_reference(x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:],
                                     epochs=epochs, batch_size=batch_size, verbose=2, callbacks=[timer])
    accuracy, auc, _ = evaluate(model, x_test, y_test)
    return {"s_per_epoch_first": timer.times[0], "s_per_epoch_rest": float(np.mean(timer.times[1:] or timer.times)),
            "steps_per_epoch": int(np.ceil((len(x_train) - n_val) / batch_size)), "test_accuracy": accuracy,
            "test_auc": auc, "val_accuracy": history.history["val_accuracy"]}


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
    return {"s_per_epoch_first": times[0], "s_per_epoch_rest": float(np.mean(times[1:] or times)),
            "test_accuracy": float(np.mean(predictions == y_test)), "parameters": sum(p.numel() for p in model.parameters())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-maps", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--peer-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-compile", action="store_true", help="run the PyTorch peer eagerly only")
    args = parser.parse_args()

    import keras

    from crsky.dataset import train_test_split
    from crsky.simulate import simulate

    start = time.perf_counter()
    sim = simulate("textbook", args.n_maps, seed=1, processes=min(8, os.cpu_count() or 1))
    print(f"simulated {args.n_maps} maps in {time.perf_counter() - start:.1f} s", flush=True)
    (x_train, y_train), (x_test, y_test) = train_test_split(sim)
    keras.utils.set_random_seed(1)
    devices = "?"
    try:
        import jax

        devices = ", ".join(d.device_kind for d in jax.devices())
    except Exception:
        pass
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, devices: {devices}", flush=True)
    result = keras_run(x_train, y_train, x_test, y_test, args.epochs, args.batch_size)
    print(f"KERAS/{keras.backend.backend()}: first epoch {result['s_per_epoch_first']:.2f} s (compilation), "
          f"then {result['s_per_epoch_rest']:.2f} s/epoch ({1000 * result['s_per_epoch_rest'] / result['steps_per_epoch']:.2f} ms/step); "
          f"test accuracy {result['test_accuracy']:.4f}, AUC {result['test_auc']:.4f}", flush=True)
    for compile_model in ([False] if args.no_compile else [False, True]):
        try:
            peer = torch_peer(x_train, y_train, x_test, y_test, args.peer_epochs, args.batch_size, compile_model)
        except Exception as error:  # the peer is a comparison, not the product
            print(f"PYTORCH peer ({'compiled' if compile_model else 'eager'}) failed: {type(error).__name__}: {error}")
            continue
        print(f"PYTORCH peer ({'torch.compile' if compile_model else 'eager'}, {peer['parameters']} parameters): "
              f"first epoch {peer['s_per_epoch_first']:.2f} s, then {peer['s_per_epoch_rest']:.2f} s/epoch; "
              f"test accuracy {peer['test_accuracy']:.4f}; Keras/{keras.backend.backend()} is "
              f"{peer['s_per_epoch_rest'] / result['s_per_epoch_rest']:.2f}x faster per epoch", flush=True)


if __name__ == "__main__":
    main()
