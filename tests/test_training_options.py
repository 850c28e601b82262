"""The training options that compute the same thing faster: the sky graph computed once,
the first Dense per point, batches held on the device and several steps per call."""

import numpy as np
import pytest

import keras

pytestmark = pytest.mark.keras


def sky(n, seed=0):
    """Maps (n, 40, 4) of unit vectors and energies, and labels."""
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 40, 3))
    xyz /= np.linalg.norm(xyz, axis=-1, keepdims=True)
    x = np.concatenate([xyz, rng.uniform(0.95, 0.99, size=(n, 40, 1))], axis=-1).astype("float32")
    return x, rng.integers(0, 2, n)


def test_reference_model_options_keep_the_model():
    from crsky.models import build_reference_model, model_inputs
    from edgeconv import NeighborIndices

    x, _ = sky(3)
    inputs = model_inputs(x)
    reference = build_reference_model(num_points=40)
    for options in ({"sky_graph": "shared"}, {"dense_per_point": True}, {"sky_graph": "shared", "dense_per_point": True}):
        model = build_reference_model(num_points=40, **options)
        assert model.count_params() == reference.count_params()
        assert [tuple(t.shape) for t in model.inputs] == [(None, 40, 3), (None, 40, 4)]
        model.set_weights(reference.get_weights())
        np.testing.assert_allclose(model.predict(inputs, verbose=0), reference.predict(inputs, verbose=0),
                                   rtol=1e-5, atol=1e-6)
    shared = build_reference_model(num_points=40, sky_graph="shared")
    assert sum(isinstance(layer, NeighborIndices) for layer in shared.layers) == 1
    with pytest.raises(ValueError, match="sky_graph must be"):
        build_reference_model(sky_graph="input")


def test_train_reference_with_a_fixed_graph_returns_the_plain_model(tmp_path):
    from crsky.models import model_inputs
    from crsky.training import evaluate, train_reference

    x, y = sky(24)
    model, history = train_reference(x[:16], y[:16], x[16:20], y[16:20], epochs=2, batch_size=8, verbose=0,
                                     fixed_graph=True, dense_per_point=True, warmup_steps=2)
    assert [t.name for t in model.inputs] == ["points", "features"]
    assert [t.name for t in history.model.inputs] == ["points", "features", "points_graph_8"]
    assert history.history["graph_seconds"] > 0 and len(history.history["val_accuracy"]) == 2
    model.save(tmp_path / "dgcnn.keras")
    loaded = keras.models.load_model(tmp_path / "dgcnn.keras")
    np.testing.assert_allclose(loaded.predict(model_inputs(x[20:]), verbose=0),
                               model.predict(model_inputs(x[20:]), verbose=0), rtol=1e-6)
    accuracy, _, _ = evaluate(loaded, x[20:], y[20:])
    assert 0 <= accuracy <= 1


def test_warmup_schedule_rises_then_decays():
    from crsky.training import compile_stable

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    compile_stable(model, steps=100, learning_rate=1e-2, warmup_steps=10)
    schedule = model.optimizer._learning_rate
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(rates, [0.0, 5e-3, 1e-2, 5e-3, 0.0], atol=1e-6)


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_device_batches_cover_every_sample_each_epoch(steps_per_call):
    from crsky.training import DeviceBatches

    n, batch = 22, 4
    x = np.arange(n, dtype="float32")[:, None] * np.ones((1, 2), "float32")
    data = DeviceBatches([x, x[:, :1]], np.arange(n), batch, seed=3, steps_per_call=steps_per_call)
    for _ in range(2):
        seen = []
        for i in range(len(data)):
            (a, b), y = data[i]
            a, b, y = (keras.ops.convert_to_numpy(t) for t in (a, b, y))
            if steps_per_call > 1:
                assert a.shape[1:] == (batch, 2) and y.shape[1:] == (batch,)
            np.testing.assert_array_equal(a[..., 0], y)
            np.testing.assert_array_equal(b[..., 0], y)
            seen.extend(np.ravel(y))
        assert set(seen) == set(range(n))
        assert len(seen) == (n if steps_per_call == 1 else 24)  # 6 full batches, topped up
        data.on_epoch_end()
    assert len(data) == (6 if steps_per_call == 1 else 2)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="scan_train_steps is for the JAX backend")
def test_scanned_steps_train_as_single_steps():
    """Two ways to run the same updates: one compiled call per batch, or three per call."""
    from crsky.training import DeviceBatches, scan_train_steps

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 2, 48), 2)

    def model():
        keras.utils.set_random_seed(4)
        net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                                keras.layers.BatchNormalization(), keras.layers.Dense(2, activation="softmax")])
        schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=12)
        net.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(schedule), metrics=["accuracy"])
        return net

    single, scanned = model(), model()
    h1 = single.fit(DeviceBatches(x, y, 8, seed=1), epochs=2, verbose=0, shuffle=False)
    scan_train_steps(scanned)
    h2 = scanned.fit(DeviceBatches(x, y, 8, seed=1, steps_per_call=3), epochs=2, verbose=0, shuffle=False)
    assert int(scanned.optimizer.iterations) == int(single.optimizer.iterations) == 12
    for a, b in zip(scanned.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-5)



def test_reference_training_in_parts_keeps_one_schedule_and_one_history():
    from crsky.training import ReferenceTraining

    x, y = sky(20)
    training = ReferenceTraining(x[:16], y[:16], x[16:], y[16:], epochs=3, batch_size=8, fixed_graph=True)
    assert training.epoch == 0 and training.history is None
    training.fit(until=1, verbose=0)
    history = training.fit(verbose=0)
    assert training.epoch == 3 and history.epoch == [0, 1, 2] and len(history.history["val_accuracy"]) == 3
    assert int(training.trainer.optimizer.iterations) == 6
    assert training.trainer.optimizer._learning_rate.decay_steps == 6  # the cosine spans all 3 epochs
    assert history.history["seconds_per_epoch"] == pytest.approx(training.seconds / 3)
    assert training.fit(verbose=0) is history and training.epoch == 3


def test_fit_unless_grading_trains_the_students_model_through_its_fixed_graph(tmp_path, monkeypatch, capsys):
    """Notebook 3's training step on a CPU: the student's compiled model is fitted through a
    twin that reads the sky graph from an input; the student's model is what trains and is
    saved. A model with no fixed graph trains as it is."""
    from crsky import training
    from crsky.experiment import Size
    from crsky.models import build_reference_model, model_inputs
    from edgeconv import EdgeConv

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(training, "fast_options", lambda: dict(training.FAST_OPTIONS))
    x, y = sky(24)
    size = Size("tiny", n_maps=24, epochs=2, batch_size=8)
    keras.utils.set_random_seed(0)
    model = build_reference_model(num_points=40)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    trained, history = training.fit_unless_grading(model, (x[:16], y[:16]), (x[16:20], y[16:20]), size,
                                                   save_as=str(tmp_path / "dgcnn.keras"))
    assert trained is model
    assert [t.name for t in history.model.inputs] == ["points", "features", "points_graph_8"]
    assert "sky graph of every map computed once" in capsys.readouterr().out
    assert len(history.history["val_accuracy"]) == 2
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())), "the student's model did not train"
    assert int(model.optimizer.iterations) == 4
    loaded = keras.models.load_model(tmp_path / "dgcnn.keras")
    np.testing.assert_allclose(loaded.predict(model_inputs(x[20:]), verbose=0),
                               model.predict(model_inputs(x[20:]), verbose=0), rtol=1e-5, atol=1e-6)

    # Every EdgeConv on a graph the network computes: nothing to compute once, a plain fit.
    points = keras.Input((40, 3), name="points")
    features = keras.Input((40, 4), name="features")
    hidden = keras.layers.Dense(4)(keras.layers.Concatenate()([points, features]))
    hidden = EdgeConv(lambda a: keras.layers.Dense(4)(keras.layers.Concatenate()(a)), 4)([hidden, hidden])
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling1D()(hidden))
    dynamic = keras.Model([points, features], out)
    dynamic.compile(loss="categorical_crossentropy", optimizer="adam")
    _, history = training.fit_unless_grading(dynamic, (x[:16], y[:16]), (x[:0], y[:0]), size,
                                             save_as=str(tmp_path / "dynamic.keras"))
    assert history.model is dynamic and "sky graph" not in capsys.readouterr().out

    uncompiled = build_reference_model(num_points=40)
    with pytest.raises(ValueError, match="compile the model"):
        training.fixed_graph_trainer(uncompiled)
