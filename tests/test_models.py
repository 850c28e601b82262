"""The kernel that reads the edge: what its first layer sees, that it ignores the centre's
absolute position, how the reference model chooses its first kernel, and that the package
exports no answer under a name an exercise asks for."""

import importlib
import pkgutil

import numpy as np
import pytest

import keras

import crsky
from crsky.models import (KERNELS, EdgeFeatures, build_reference_model, edge_kernel, model_inputs,
                          textbook_kernel)

pytestmark = pytest.mark.keras


def edges(n, seed=0):
    """Random (energy feature, x, y, z) rows ``(n, 4)`` for centres and neighbours."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 4)).astype("float32")


def test_edge_features_are_energy_difference_offset_and_their_product():
    x_i, x_j = edges(6)
    out = keras.ops.convert_to_numpy(EdgeFeatures()([x_i, x_j]))
    assert out.shape == (6, 8)
    np.testing.assert_allclose(out[:, 0], x_i[:, 0])
    np.testing.assert_allclose(out[:, 1], x_j[:, 0] - x_i[:, 0], rtol=1e-6)
    np.testing.assert_allclose(out[:, 2:5], x_j[:, 1:] - x_i[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(out[:, 5:], (x_j[:, :1] - x_i[:, :1]) * (x_j[:, 1:] - x_i[:, 1:]), rtol=1e-5)
    short = keras.ops.convert_to_numpy(EdgeFeatures(products=False)([x_i, x_j]))
    np.testing.assert_allclose(short, out[:, :5])
    with pytest.raises(ValueError, match=r"\(None, 4\) each"):
        EdgeFeatures()([keras.Input((5,)), keras.Input((5,))])


def test_edge_kernel_ignores_the_absolute_position():
    x_i, x_j = keras.Input((4,)), keras.Input((4,))
    kernel = keras.Model([x_i, x_j], edge_kernel([x_i, x_j], nodes=6))
    assert tuple(kernel.outputs[0].shape) == (None, 6)
    # BatchNormalization of the 8 edge features (32 weights) and three Dense layers with theirs.
    assert kernel.count_params() == 32 + (8 * 6 + 4 * 6) + 2 * (6 * 6 + 4 * 6)
    a, b = edges(50, seed=1)
    shift = np.zeros((1, 4), "float32")
    shift[0, 1:] = [0.3, -0.7, 0.2]  # the same displacement of centre and neighbour
    np.testing.assert_allclose(kernel.predict([a + shift, b + shift], verbose=0), kernel.predict([a, b], verbose=0),
                               rtol=1e-4, atol=1e-5)
    textbook = keras.Model([x_i, x_j], textbook_kernel([x_i, x_j], nodes=6))
    assert not np.allclose(textbook.predict([a + shift, b + shift], verbose=0), textbook.predict([a, b], verbose=0),
                           atol=1e-3), "the textbook's kernel sees the absolute position (the check must be able to fail)"


def test_reference_model_kernels_and_parameters():
    counts = {kernel: build_reference_model(num_points=40, kernel=kernel).count_params() for kernel in KERNELS}
    assert counts == {"auto": 4802, "edge": 4802, "edge-no-products": 4766, "textbook": 4770}
    assert build_reference_model(num_points=40, energy_scaling=False).count_params() == 4770
    model = build_reference_model(num_points=40)
    first = model.layers[3]  # points, features, energy_scaling, then the first EdgeConv
    assert any(isinstance(layer, EdgeFeatures) for layer in first.kernel_func.layers)
    with pytest.raises(ValueError, match="kernel must be one of"):
        build_reference_model(kernel="mine")


def test_edge_kernel_model_trains_saves_and_loads_in_safe_mode(tmp_path):
    from crsky.simulate import simulate

    maps, labels = (simulate("textbook", 24, seed=4)[key] for key in ("data", "label"))
    model = build_reference_model(dense_per_point=True)  # the edge kernel runs per edge, the others per point
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    before = [w.copy() for w in model.get_weights()]
    model.fit(model_inputs(maps[:16]), keras.utils.to_categorical(labels[:16], 2), batch_size=8, epochs=1, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(model_inputs(maps[16:]), verbose=0),
                               model.predict(model_inputs(maps[16:]), verbose=0), rtol=1e-5, atol=1e-6)


def test_the_package_exports_no_exercise_answer_by_its_name():
    """Notebook 2 asks for kernel_nn, notebook 3 for build_dgcnn, notebook 5 for cosmic_ray_labels,
    build_dgcnn_per_cr and per_cr_loss: the package must not have them."""
    modules = [crsky] + [importlib.import_module(f"crsky.{m.name}") for m in pkgutil.iter_modules(crsky.__path__)
                         if m.name not in ("colab", "__main__")]
    for module in modules:
        for name in ("kernel_nn", "build_dgcnn", "cosmic_ray_labels", "build_dgcnn_per_cr", "per_cr_loss"):
            assert not hasattr(module, name), f"{module.__name__}.{name}"
