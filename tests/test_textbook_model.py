"""The textbook's kernel network and model-building cells, in the textbook's own form,
build, summarise and train with this layer (Exercise 10.1 on Keras 3)."""

import numpy as np
import pytest

import keras

from crsky.models import build_reference_model, compile_textbook

pytestmark = pytest.mark.keras


def textbook_model():
    """The exercise's cells as students write them: `layers` and `EdgeConv` imported, a
    kernel_nn(data, nodes) function and lambdas passed to EdgeConv."""
    from edgeconv import EdgeConv

    layers = keras.layers

    def kernel_nn(data, nodes=16):
        d1, d2 = data
        dif = layers.Subtract()([d1, d2])
        x = layers.Concatenate(axis=-1)([d1, dif])
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        return x

    points_input = layers.Input((500, 3))
    feats_input = layers.Input((500, 4))
    x = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=8)([points_input, feats_input])
    x = layers.Activation("relu")(x)
    x = EdgeConv(lambda a: kernel_nn(a, nodes=16), next_neighbors=8)([points_input, x])
    x = layers.Activation("relu")(x)
    x = EdgeConv(lambda a: kernel_nn(a, nodes=32), next_neighbors=8)([x, x])
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling1D(name="embedding")(x)
    out = layers.Dense(2, name="classification", activation="softmax")(x)
    return keras.models.Model([points_input, feats_input], out)


def random_sky(n, seed=0):
    """Isotropic unit vectors and energies in the textbook's range: [points, features], labels."""
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 500, 3))
    xyz /= np.linalg.norm(xyz, axis=-1, keepdims=True)
    energy = rng.uniform(0.956, 0.985, size=(n, 500, 1))
    features = np.concatenate([energy, xyz], axis=-1).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 2, n), 2)
    return [xyz.astype("float32"), features], labels


def test_textbook_cells_build_with_published_parameter_count(capsys):
    model = textbook_model()
    print(model.summary())
    assert model.count_params() == 4770
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4434
    kernel = model.layers[2].kernel_func
    kernel.summary()
    assert [tuple(t.shape) for t in kernel.inputs] == [(None, 4), (None, 4)]
    assert tuple(kernel.outputs[0].shape) == (None, 8)
    assert model.layers[2].next_neighbors == 8
    printed = capsys.readouterr().out
    assert "4,770" in printed and "(None, 8)" in printed


def test_textbook_model_trains():
    model = textbook_model()
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(3e-3, weight_decay=1e-4),
        metrics=["accuracy"],
    )
    inputs, labels = random_sky(32)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(inputs, labels, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert all(changed)  # every weight, BatchNormalization statistics included, was updated
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (32, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_package_textbook_kernel_model_is_the_textbook_model():
    model = build_reference_model(kernel="textbook")
    textbook = textbook_model()
    assert model.count_params() == textbook.count_params() == 4770
    assert [w.shape for w in model.weights] == [w.shape for w in textbook.weights]
    compile_textbook(model)
    inputs, labels = random_sky(16, seed=1)
    loss = model.train_on_batch(inputs, labels)
    assert np.all(np.isfinite(loss))
