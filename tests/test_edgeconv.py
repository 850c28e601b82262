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


# ------------------------------------------------- the graph given, the first Dense per point
def textbook_kernel(nodes=5):
    """The textbook's kernel shape: Concatenate([x_i, x_i - x_j]), Dense without bias + BN, twice."""

    def kernel(data):
        x_i, x_j = data
        x = layers.Concatenate()([x_i, layers.Subtract()([x_i, x_j])])
        for _ in range(2):
            x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
            x = layers.BatchNormalization()(x)
        return x

    return kernel


def test_neighbor_indices_layer_is_knn_indices():
    from edgeconv import NeighborIndices

    points, _ = random_inputs(batch=3, num_points=20)
    layer = NeighborIndices(5)
    indices = layer(points)
    assert keras.backend.standardize_dtype(indices.dtype) == "int32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), brute_force_knn(points, 5))
    symbolic = layer(layers.Input((20, 3)))
    assert tuple(symbolic.shape) == (None, 20, 5) and symbolic.dtype == "int32"
    with pytest.raises(ValueError, match="smaller than the number of points"):
        NeighborIndices(20)(points)
    with pytest.raises(ValueError, match="positive integer"):
        NeighborIndices(0)


@pytest.mark.parametrize("agg", ["mean", "max"])
def test_given_indices_compute_the_same_as_searching(agg):
    from edgeconv import NeighborIndices

    points, features = random_inputs()
    layer = EdgeConv(dense_kernel(), next_neighbors=3, agg_func=agg)
    searched = keras.ops.convert_to_numpy(layer([points, features]))
    given = keras.ops.convert_to_numpy(layer([NeighborIndices(3)(points), features]))
    np.testing.assert_array_equal(given, searched)
    numpy_indices = brute_force_knn(points, 3).astype("int32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([numpy_indices, features])), searched, rtol=1e-6)
    with pytest.raises(ValueError, match=r"neighbour indices of shape \(2, 12, 4\): expected \(batch, points, 3\)"):
        layer([brute_force_knn(points, 4).astype("int32"), features])


@pytest.mark.parametrize("kernel, agg", [(dense_kernel(), "mean"), (dense_kernel(), "max"),
                                         (textbook_kernel(), "mean"), (textbook_kernel(), "sum")])
@pytest.mark.parametrize("training", [False, True])
def test_dense_per_point_computes_the_same_as_per_edge(kernel, agg, training):
    """Two ways to compute the same layer: the first Dense on the P·k edges, or on the P
    points and gathered (a bias and an activation included); outputs and gradients agree."""
    points, features = random_inputs(num_points=16, channels=6)
    per_edge = EdgeConv(kernel, next_neighbors=4, agg_func=agg)
    per_point = EdgeConv(kernel, next_neighbors=4, agg_func=agg, dense_per_point=True)
    per_edge([points, features])
    per_point([points, features])
    per_point.set_weights([w + 0.1 for w in per_edge.get_weights()])  # moved BN statistics too
    per_edge.set_weights([w + 0.1 for w in per_edge.get_weights()])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_point([points, features], training=training)),
                               keras.ops.convert_to_numpy(per_edge([points, features], training=training)),
                               rtol=1e-5, atol=1e-5)
    assert "dense_per_point=True" in repr(per_point) and "dense_per_point" not in repr(per_edge)
    assert [w.shape for w in per_point.weights] == [w.shape for w in per_edge.weights]

    def loss_and_gradients(layer):
        model = keras.Model(inputs := [layers.Input((16, 3)), layers.Input((16, 6))], layer(inputs))
        model.compile(loss="mse", optimizer=keras.optimizers.SGD(0.1))
        before = [w.copy() for w in model.get_weights()]
        model.train_on_batch([points, features], np.ones((2, 16, 5), "float32"))
        return [a - b for a, b in zip(model.get_weights(), before)]

    if training:
        for a, b in zip(loss_and_gradients(per_point), loss_and_gradients(per_edge)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_dense_per_point_refuses_a_kernel_without_a_linear_start():
    def nonlinear_first(data):
        x = layers.Concatenate()([layers.Activation("tanh")(data[0]), data[1]])
        return layers.Dense(3)(x)

    def output_not_through_the_dense(data):
        return layers.Add()([layers.Dense(3)(layers.Concatenate()(data)), layers.Dense(3)(data[1])])

    for kernel in (nonlinear_first, output_not_through_the_dense):
        with pytest.raises(ValueError, match="dense_per_point=True needs a kernel network"):
            EdgeConv(kernel, next_neighbors=3, dense_per_point=True)(layers.Input((10, 4)))
    with pytest.raises(ValueError, match="dense_per_point must be True or False"):
        EdgeConv(dense_kernel(), next_neighbors=3, dense_per_point="yes")


def test_dense_per_point_with_the_dense_layer_as_output():
    kernel = lambda a: layers.Dense(4, activation="relu")(layers.Subtract()([a[1], a[0]]))  # noqa: E731
    points, features = random_inputs()
    per_edge = EdgeConv(kernel, next_neighbors=3)
    expected = keras.ops.convert_to_numpy(per_edge([points, features]))
    per_point = EdgeConv(per_edge.kernel_func, next_neighbors=3, dense_per_point=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_point([points, features])), expected,
                               rtol=1e-5, atol=1e-6)


def test_graph_layers_and_dense_per_point_save_and_load(tmp_path):
    from edgeconv import NeighborIndices

    points, features = random_inputs(num_points=20)
    points_input, feats_input = layers.Input((20, 3)), layers.Input((20, 4))
    graph = NeighborIndices(4, name="graph")(points_input)
    x = EdgeConv(lambda a: textbook_kernel(6)(a), next_neighbors=4, dense_per_point=True)([graph, feats_input])
    x = EdgeConv(lambda a: textbook_kernel(5)(a), next_neighbors=4)([graph, x])
    x = EdgeConv(lambda a: dense_kernel(3)(a), next_neighbors=3, dense_per_point=True)([x, x])
    model = keras.Model([points_input, feats_input], layers.GlobalAveragePooling1D()(x))
    model.compile(loss="mse", optimizer="adam")
    model.fit([points, features], np.ones((2, 3)), epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict([points, features], verbose=0),
                                  model.predict([points, features], verbose=0))
    edgeconvs = [layer for layer in loaded.layers if isinstance(layer, EdgeConv)]
    assert [layer.dense_per_point for layer in edgeconvs] == [True, False, True]
    assert isinstance(loaded.get_layer("graph"), NeighborIndices) and loaded.get_layer("graph").next_neighbors == 4
    assert [tuple(t.shape) for t in edgeconvs[0].kernel_func.inputs] == [(None, 4), (None, 4)]


def test_with_graph_inputs_trains_the_same_model():
    from edgeconv import neighbor_indices, with_graph_inputs

    points, features = random_inputs(batch=4, num_points=20)
    points_input, feats_input = layers.Input((20, 3), name="points"), layers.Input((20, 4), name="features")
    x = EdgeConv(textbook_kernel(6), next_neighbors=4)([points_input, feats_input])
    x = EdgeConv(textbook_kernel(5), next_neighbors=4, dense_per_point=True)([points_input, x])
    x = EdgeConv(dense_kernel(3), next_neighbors=3)([x, x])  # dynamic: still searched
    model = keras.Model([points_input, feats_input], layers.GlobalAveragePooling1D()(x))
    graph_model, add_graphs = with_graph_inputs(model)
    assert [t.name for t in graph_model.inputs] == ["points", "features", "points_graph_4"]
    assert graph_model.inputs[2].dtype == "int32"
    assert len(graph_model.weights) == len(model.weights) and all(
        a is b for a, b in zip(graph_model.weights, model.weights))
    inputs = add_graphs([points, features], batch_size=3)
    np.testing.assert_array_equal(inputs[2], brute_force_knn(points, 4))
    np.testing.assert_array_equal(neighbor_indices(points, 4), inputs[2])
    np.testing.assert_allclose(graph_model.predict(inputs, verbose=0), model.predict([points, features], verbose=0),
                               rtol=1e-5, atol=1e-6)
    graph_model.compile(loss="mse", optimizer="adam")
    before = [w.copy() for w in model.get_weights()]
    graph_model.fit(inputs, np.ones((4, 3)), epochs=1, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))  # the model was trained


def test_with_graph_inputs_needs_a_fixed_graph():
    from edgeconv import with_graph_inputs

    y = layers.Input((20, 4))
    with pytest.raises(ValueError, match="no fixed graph"):
        with_graph_inputs(keras.Model(y, EdgeConv(dense_kernel(), next_neighbors=3)(layers.Dense(4)(y))))


def test_neighbor_indices_engines_agree_with_the_layer():
    """The graph computed outside training: a k-d tree and the compiled search agree with
    knn_indices (random sky maps, no ties), and both drop the point itself if duplicated."""
    from edgeconv import neighbor_indices

    rng = np.random.default_rng(7)
    sky = rng.normal(size=(5, 60, 3))
    sky /= np.linalg.norm(sky, axis=-1, keepdims=True)
    sky = sky.astype("float32")
    expected = keras.ops.convert_to_numpy(knn_indices(sky, 6))
    for engine in ("keras", "kdtree", "auto"):
        np.testing.assert_array_equal(neighbor_indices(sky, 6, batch_size=2, engine=engine), expected)
    sky[0, 1] = sky[0, 0]
    for engine in ("keras", "kdtree"):
        indices = neighbor_indices(sky[:1], 3, engine=engine)
        assert 0 not in indices[0, 0] and indices[0, 0, 0] == 1
        assert 1 not in indices[0, 1] and indices[0, 1, 0] == 0
    with pytest.raises(ValueError, match="engine must be one of"):
        neighbor_indices(sky, 3, engine="ball")
