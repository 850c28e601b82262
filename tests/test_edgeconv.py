"""EdgeConv against a brute-force NumPy reference, its symmetries, saving and errors."""

import numpy as np
import pytest

import keras
from keras import layers

from edgeconv import EdgeConv, knn_indices

pytestmark = pytest.mark.keras

AGGREGATIONS = {"mean": np.mean, "max": np.max, "sum": np.sum}


def dense_kernel(nodes=5):
    """A deterministic kernel network (no BatchNormalization): h(x_i, x_j - x_i)."""

    def kernel(data):
        x_i, x_j = data
        x = layers.Concatenate()([x_i, layers.Subtract()([x_j, x_i])])
        x = layers.Dense(7, activation="tanh")(x)
        return layers.Dense(nodes)(x)

    return kernel


def brute_force_knn(points, k):
    """Explicit k nearest neighbours, the point itself excluded: (batch, P, k)."""
    batch, num_points, _ = points.shape
    out = np.zeros((batch, num_points, k), dtype=int)
    for b in range(batch):
        for i in range(num_points):
            distance = np.linalg.norm(points[b] - points[b, i], axis=-1)
            distance[i] = np.inf
            out[b, i] = np.argsort(distance, kind="stable")[:k]
    return out


def brute_force_edgeconv(kernel_model, points, features, k, agg):
    """Explicit loop over every edge, applying the kernel network to one edge at a time."""
    neighbours = brute_force_knn(points, k)
    batch, num_points, _ = features.shape
    rows = []
    for b in range(batch):
        for i in range(num_points):
            edges = []
            for j in neighbours[b, i]:
                x_i = features[b, i][None].astype("float32")
                x_j = features[b, j][None].astype("float32")
                edges.append(keras.ops.convert_to_numpy(kernel_model([x_i, x_j]))[0])
            rows.append(AGGREGATIONS[agg](np.stack(edges), axis=0))
    return np.stack(rows).reshape(batch, num_points, -1)


def random_inputs(batch=2, num_points=12, point_dim=3, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(batch, num_points, point_dim)).astype("float32")
    features = rng.normal(size=(batch, num_points, channels)).astype("float32")
    return points, features


@pytest.mark.parametrize("agg", ["mean", "max", "sum"])
def test_matches_brute_force_reference(agg):
    points, features = random_inputs()
    layer = EdgeConv(dense_kernel(), next_neighbors=3, agg_func=agg)
    out = keras.ops.convert_to_numpy(layer([points, features]))
    expected = brute_force_edgeconv(layer.kernel_func, points, features, 3, agg)
    assert out.shape == (2, 12, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["auto", "top_k", "select"])
def test_knn_matches_brute_force_and_excludes_self(method):
    points, _ = random_inputs(batch=3, num_points=20)
    indices = keras.ops.convert_to_numpy(knn_indices(points, 5, method=method))
    np.testing.assert_array_equal(indices, brute_force_knn(points, 5))
    own = np.arange(20)[None, :, None]
    assert not np.any(indices == own)


def test_knn_in_float32_under_bfloat16_inputs():
    """Mixed precision feeds the layer bfloat16; neighbours on the sky must not change."""
    rng = np.random.default_rng(3)
    sky = rng.normal(size=(2, 300, 3))
    sky /= np.linalg.norm(sky, axis=-1, keepdims=True)
    bf16 = keras.ops.convert_to_tensor(sky, "bfloat16")
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(bf16, "float32")).astype("float64")
    indices = keras.ops.convert_to_numpy(knn_indices(bf16, 8))
    expected = brute_force_knn(rounded, 8)
    # The same neighbour sets (the order of exact ties may differ).
    agreement = np.mean(np.sort(indices, -1) == np.sort(expected, -1))
    assert agreement > 0.995, f"only {agreement:.3f} of the neighbours agree with float64"


@pytest.mark.parametrize("method", ["top_k", "select"])
def test_self_excluded_even_for_coincident_points(method):
    points, _ = random_inputs(batch=1, num_points=10)
    points[0, 1] = points[0, 0]  # two cosmic rays from exactly the same direction
    indices = keras.ops.convert_to_numpy(knn_indices(points, 2, method=method))
    assert 0 not in indices[0, 0] and indices[0, 0, 0] == 1
    assert 1 not in indices[0, 1] and indices[0, 1, 0] == 0


def test_knn_methods_agree_on_ties():
    """Many points with identical features (as after a ReLU). ``select`` takes tied
    neighbours lowest index first, like a stable sort, on every backend; ``top_k`` does
    the same on TensorFlow and JAX (PyTorch's topk promises no order among ties), and
    everywhere picks neighbours at the same distances."""
    rng = np.random.default_rng(5)
    features = np.maximum(rng.normal(size=(2, 60, 6)), 0).astype("float32")
    features[:, :25] = 0.0
    by_top_k = keras.ops.convert_to_numpy(knn_indices(features, 7, method="top_k"))
    by_select = keras.ops.convert_to_numpy(knn_indices(features, 7, method="select"))
    np.testing.assert_array_equal(by_select[0, 0], [1, 2, 3, 4, 5, 6, 7])  # its 24 twins, lowest first

    def distances(indices):
        neighbours = np.take_along_axis(features[:, :, None, :], indices[..., None], axis=1)
        return np.linalg.norm(neighbours - features[:, :, None, :], axis=-1)

    np.testing.assert_allclose(distances(by_top_k), distances(by_select), atol=1e-6)
    if keras.backend.backend() != "torch":
        np.testing.assert_array_equal(by_select, by_top_k)


def test_knn_rejects_an_unknown_method():
    points, _ = random_inputs()
    with pytest.raises(ValueError, match="method must be 'auto', 'top_k' or 'select', got 'sort'"):
        knn_indices(points, 3, method="sort")


@pytest.mark.parametrize("agg", ["mean", "max"])
def test_permutation_equivariance(agg):
    points, features = random_inputs(num_points=16)
    layer = EdgeConv(dense_kernel(), next_neighbors=4, agg_func=agg)
    out = keras.ops.convert_to_numpy(layer([points, features]))
    permutation = np.random.default_rng(1).permutation(16)
    out_permuted = keras.ops.convert_to_numpy(layer([points[:, permutation], features[:, permutation]]))
    np.testing.assert_allclose(out_permuted, out[:, permutation], rtol=1e-5, atol=1e-6)


def test_dynamic_graph_call_forms_agree_and_differ_from_fixed_graph():
    points, features = random_inputs()
    layer = EdgeConv(dense_kernel(), next_neighbors=3)
    single = keras.ops.convert_to_numpy(layer(features))
    pair = keras.ops.convert_to_numpy(layer([features, features]))
    explicit = brute_force_edgeconv(layer.kernel_func, features, features, 3, "mean")
    np.testing.assert_allclose(single, pair, rtol=1e-6)
    np.testing.assert_allclose(single, explicit, rtol=1e-5, atol=1e-5)
    fixed = keras.ops.convert_to_numpy(layer([points, features]))
    assert not np.allclose(fixed, single)


def test_gradient_flows_to_features_not_through_graph():
    points, features = random_inputs()
    layer = EdgeConv(dense_kernel(), next_neighbors=3)
    layer([points, features])
    # Points only choose the graph: a tiny shift that keeps the graph keeps the output.
    shifted = points + 1e-4
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer([shifted, features])),
        keras.ops.convert_to_numpy(layer([points, features])),
        rtol=1e-6,
    )
    assert len(layer.trainable_weights) == 4


def test_kernel_func_is_a_model_with_textbook_shapes():
    inputs = [layers.Input((30, 3)), layers.Input((30, 4))]
    layer = EdgeConv(lambda a: layers.Dense(6)(layers.Concatenate()(a)), next_neighbors=5)
    out = layer(inputs)
    assert isinstance(layer.kernel_func, keras.Model)
    assert [tuple(t.shape) for t in layer.kernel_func.inputs] == [(None, 4), (None, 4)]
    assert tuple(layer.kernel_func.outputs[0].shape) == (None, 6)
    assert tuple(out.shape) == (None, 30, 6)
    assert layer.next_neighbors == 5
    assert "next_neighbors=5" in repr(layer)


def test_kernel_model_can_be_passed_directly():
    x_i, x_j = layers.Input((4,)), layers.Input((4,))
    kernel = keras.Model([x_i, x_j], layers.Dense(3)(layers.Subtract()([x_j, x_i])))
    points, features = random_inputs()
    layer = EdgeConv(kernel, next_neighbors=3, agg_func=keras.ops.max)
    assert layer.agg_func == "max"
    out = keras.ops.convert_to_numpy(layer([points, features]))
    np.testing.assert_allclose(out, brute_force_edgeconv(kernel, points, features, 3, "max"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("agg", ["mean", "max", "sum"])
def test_save_and_load_round_trip_with_lambda_kernel(tmp_path, agg):
    points, features = random_inputs(num_points=20)
    points_input, feats_input = layers.Input((20, 3)), layers.Input((20, 4))
    x = EdgeConv(lambda a: dense_kernel(6)(a), next_neighbors=4, agg_func=agg)([points_input, feats_input])
    x = EdgeConv(lambda a: layers.BatchNormalization()(dense_kernel(5)(a)), next_neighbors=3, agg_func=agg)([x, x])
    model = keras.Model([points_input, feats_input], layers.GlobalAveragePooling1D()(x))
    model.compile(loss="mse", optimizer="adam")
    model.fit([points, features], np.ones((2, 5)), epochs=2, verbose=0)  # moves BN statistics
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.predict([points, features], verbose=0)),
        keras.ops.convert_to_numpy(model.predict([points, features], verbose=0)),
    )
    assert loaded.layers[2].agg_func == agg


def test_unbuilt_layer_with_function_refuses_to_serialise():
    with pytest.raises(ValueError, match="once it is built"):
        EdgeConv(dense_kernel(), next_neighbors=3).get_config()


# ----------------------------------------------------------------- bad input
def test_k_not_smaller_than_number_of_points():
    points, features = random_inputs(num_points=5)
    with pytest.raises(ValueError, match=r"smaller than the number of points \(5\).*next_neighbors=5"):
        EdgeConv(dense_kernel(), next_neighbors=5)([points, features])


def test_points_and_features_with_different_number_of_points():
    with pytest.raises(ValueError, match="same number of points.*points \\(None, 10, 3\\).*features \\(None, 12, 4\\)"):
        EdgeConv(dense_kernel(), next_neighbors=3)([layers.Input((10, 3)), layers.Input((12, 4))])


def test_points_and_features_with_different_batch():
    points, _ = random_inputs(batch=2)
    _, features = random_inputs(batch=3)
    with pytest.raises(ValueError, match="same batch size"):
        EdgeConv(dense_kernel(), next_neighbors=3)([points, features])


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"features of shape \(batch, points, channels\), got rank 2"):
        EdgeConv(dense_kernel(), next_neighbors=3)([layers.Input((10, 3)), layers.Input((4,))])


def test_too_many_inputs():
    x = layers.Input((10, 3))
    with pytest.raises(ValueError, match="list of 3 inputs"):
        EdgeConv(dense_kernel(), next_neighbors=3)([x, x, x])


def test_kernel_returning_wrong_rank():
    kernel = lambda a: layers.Reshape((2, 2))(layers.Dense(4)(a[0]))  # noqa: E731
    with pytest.raises(ValueError, match=r"one 2-D tensor \(None, C'\), got \[\(None, 2, 2\)\]"):
        EdgeConv(kernel, next_neighbors=3)(layers.Input((10, 4)))


def test_kernel_returning_a_list():
    with pytest.raises(ValueError, match="return one Keras tensor"):
        EdgeConv(lambda a: [a[0], a[1]], next_neighbors=3)(layers.Input((10, 4)))


def test_kernel_that_fails_names_its_inputs():
    def broken(data):
        return layers.Dense(3)(data)  # a list, not a tensor

    with pytest.raises(ValueError, match=r"kernel_func failed on its inputs \[x_i, x_j\].*\(None, 4\)"):
        EdgeConv(broken, next_neighbors=3)(layers.Input((10, 4)))


def test_kernel_model_with_wrong_input_width():
    x_i, x_j = layers.Input((3,)), layers.Input((3,))
    kernel = keras.Model([x_i, x_j], layers.Dense(2)(layers.Subtract()([x_i, x_j])))
    with pytest.raises(ValueError, match=r"two inputs of shape \(None, 4\), got \[\(None, 3\), \(None, 3\)\]"):
        EdgeConv(kernel, next_neighbors=3)(layers.Input((10, 4)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"next_neighbors": 0}, "positive integer, got 0"),
        ({"next_neighbors": 2.5}, "positive integer, got 2.5"),
        ({"next_neighbors": 3, "agg_func": "median"}, "one of \\['max', 'mean', 'sum'\\].*'median'"),
        ({"next_neighbors": 3, "agg_func": lambda x, axis: x}, "so that a saved model can be loaded"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EdgeConv(dense_kernel(), **kwargs)


def test_kernel_func_not_callable():
    with pytest.raises(ValueError, match="kernel_func must be a function"):
        EdgeConv("dense", next_neighbors=3)


@pytest.mark.parametrize("method", ["top_k", "select"])
def test_knn_method_is_a_layer_option_that_is_saved(tmp_path, method):
    points, features = random_inputs(num_points=20)
    points_input, feats_input = layers.Input((20, 3)), layers.Input((20, 4))
    layer = EdgeConv(dense_kernel(6), next_neighbors=4, knn_method=method)
    model = keras.Model([points_input, feats_input], layer([points_input, feats_input]))
    reference = EdgeConv(layer.kernel_func, next_neighbors=4, knn_method="auto")([points, features])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([points, features])),
                               keras.ops.convert_to_numpy(reference), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.layers[-1].knn_method == method and f"knn_method='{method}'" in repr(loaded.layers[-1])
    with pytest.raises(ValueError, match="knn_method must be 'auto', 'top_k' or 'select', got 'sort'"):
        EdgeConv(dense_kernel(), next_neighbors=3, knn_method="sort")


def test_a_subclass_can_find_its_own_neighbours():
    """Benchmarks and experiments swap the neighbour search by subclassing, not patching."""

    class FirstPoints(EdgeConv):
        def find_neighbors(self, points):
            batch, num_points = keras.ops.shape(points)[0], keras.ops.shape(points)[1]
            return keras.ops.broadcast_to(keras.ops.arange(self.next_neighbors), (batch, num_points, self.next_neighbors))

    points, features = random_inputs()
    layer = FirstPoints(dense_kernel(), next_neighbors=3)
    out = keras.ops.convert_to_numpy(layer([points, features]))
    kernel = layer.kernel_func
    x_i = np.repeat(features[:, :, None, :], 3, axis=2).reshape(-1, 4)
    x_j = np.repeat(features[:, None, :3, :], 12, axis=1).reshape(-1, 4)
    expected = keras.ops.convert_to_numpy(kernel([x_i, x_j])).reshape(2, 12, 3, -1).mean(axis=2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
