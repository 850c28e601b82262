"""EdgeConv: the graph convolution of Dynamic Graph CNNs, as a Keras 3 layer.

Written with ``keras.ops`` only, so it runs on the TensorFlow, JAX and PyTorch
backends. It keeps the API of the layer used by "Deep Learning for Physics
Research" (Exercise 10.1): ``EdgeConv(kernel_func, next_neighbors, agg_func)``,
called on ``[points, features]``, on one tensor, or on ``[y, y]``.

Two opt-in speed-ups keep that API and compute the same thing:

- a graph computed once: :class:`NeighborIndices` returns the neighbour indices of a
  point cloud, and ``EdgeConv`` called on ``[indices, features]`` (an integer tensor
  first) uses them instead of searching again. Layers on the same fixed graph then share
  one search, and a graph that never changes (the sky) can be computed once per map,
  outside training, and fed as an input;
- ``EdgeConv(..., dense_per_point=True)``: the kernel network's first Dense layer is
  applied to the P points and its result gathered, instead of to the P·k edges, where
  the kernel starts with a Dense layer on a linear function of (x_i, x_j) (the textbook's
  ``Concatenate([x_i, x_i - x_j])``): W·[x_i, x_i − x_j] = (W₁ + W₂)·x_i − W₂·x_j.
"""

import keras
from keras import ops

__all__ = ["EdgeConv", "NeighborIndices", "with_graph_inputs", "neighbor_indices", "knn_indices",
           "pairwise_distances", "gather_neighbors", "on_gpu"]

KNN_METHODS = ("auto", "top_k", "select")

AGGREGATIONS = {"mean": ops.mean, "max": ops.max, "sum": ops.sum}


def _aggregation_name(agg_func):
    """Return the registered name of an aggregation given by name or as a function."""
    if isinstance(agg_func, str):
        if agg_func not in AGGREGATIONS:
            raise ValueError(
                f"agg_func must be one of {sorted(AGGREGATIONS)} (or the matching "
                f"keras.ops function), got {agg_func!r}."
            )
        return agg_func
    for name, function in AGGREGATIONS.items():
        if agg_func is function:
            return name
    # Functions from other modules with the same meaning (keras.ops.numpy.mean,
    # numpy.mean, tf.reduce_mean, ...) are recognised by their name.
    name = getattr(agg_func, "__name__", "")
    for candidate in (name, name.replace("reduce_", ""), {"amax": "max"}.get(name, "")):
        if candidate in AGGREGATIONS:
            return candidate
    raise ValueError(
        f"agg_func must be one of {sorted(AGGREGATIONS)} or the matching keras.ops "
        f"function, so that a saved model can be loaded again; got {agg_func!r}."
    )


def knn_indices(points, k, method="auto"):
    """Indices of the ``k`` nearest neighbours of every point, the point itself excluded.

    Args:
        points: tensor ``(batch, P, D)``: coordinates in which distances are measured.
        k: number of neighbours, ``k < P``.
        method: ``"top_k"`` (one ``top_k`` over each row of distances), ``"select"``
            (``k`` passes of a min reduction, each taking the next nearest point) or
            ``"auto"``: ``select`` on a GPU, where it is the faster of the two, ``top_k``
            elsewhere (docs/performance.md has the measurements). Both give the
            same neighbours; among tied distances ``select`` takes the lower index
            first, as ``top_k`` does on TensorFlow and JAX (PyTorch's topk promises
            no order among ties).

    Returns:
        int tensor ``(batch, P, k)``: neighbour indices ordered by increasing distance.
        No gradient flows through the graph. Distances are computed in float32 even
        under a mixed-precision policy: in bfloat16 the expansion below cancels
        catastrophically for nearby unit vectors and picks wrong neighbours.
    """
    if method not in KNN_METHODS:
        raise ValueError(f"method must be 'auto', 'top_k' or 'select', got {method!r}.")
    distance = pairwise_distances(points)
    if method == "select" or (method == "auto" and on_gpu(points)):
        return k_smallest_by_selection(distance, k)
    _, indices = ops.top_k(-distance, k=k, sorted=True)
    return indices


def pairwise_distances(points):
    """Squared distances ``(batch, P, P)`` between the points ``(batch, P, D)``, in float32
    and without gradient, with +inf on the diagonal so that no point is its own neighbour.
    (Taking top_k(k + 1) and slicing off the first column instead is slower under XLA,
    and wrong when two points coincide.)"""
    points = ops.stop_gradient(ops.convert_to_tensor(points))
    if keras.backend.standardize_dtype(points.dtype) in ("float16", "bfloat16"):
        points = ops.cast(points, "float32")
    squared_norm = ops.sum(points * points, axis=-1, keepdims=True)  # (B, P, 1)
    inner = ops.matmul(points, ops.transpose(points, (0, 2, 1)))  # (B, P, P)
    distance = squared_norm - 2.0 * inner + ops.transpose(squared_norm, (0, 2, 1))
    position = ops.arange(ops.shape(points)[1])
    is_self = ops.expand_dims(position, 1) == ops.expand_dims(position, 0)  # (P, P)
    return ops.where(is_self, float("inf"), distance)


def k_smallest_by_selection(distance, k):
    """Column indices ``(B, P, k)`` of the ``k`` smallest entries of each row of
    ``distance`` ``(B, P, N)``, smallest first: ``k`` rounds, each taking the next
    (distance, index) pair in lexicographic order with two read-only min reductions
    (which a compiler fuses with the comparisons: no sort, nothing written but (B, P))."""
    num_columns = ops.shape(distance)[-1]
    position = ops.arange(num_columns)
    chosen, value, index = [], None, None
    for _ in range(k):
        if value is None:
            candidates = distance
        else:
            later = (distance > value) | ((distance == value) & (position > index))
            candidates = ops.where(later, distance, float("inf"))
        value = ops.min(candidates, axis=-1, keepdims=True)  # (B, P, 1)
        index = ops.min(ops.where(candidates == value, position, num_columns), axis=-1, keepdims=True)
        chosen.append(index[..., 0])
    return ops.stack(chosen, axis=-1)


def on_gpu(tensor=None):
    """Whether the active Keras backend computes on a GPU: where ``tensor`` lives on
    PyTorch, else whether the backend places its work on one (decided when tracing)."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return jax.default_backend() == "gpu"
        if backend == "torch":
            import torch

            return bool(tensor.is_cuda) if tensor is not None else torch.cuda.is_available()
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_logical_devices("GPU"))
    except Exception:
        return False
    return False


def gather_neighbors(features, indices):
    """Features of every point's neighbours.

    Args:
        features: tensor ``(batch, P, C)``.
        indices: int tensor ``(batch, P, k)`` from :func:`knn_indices`.

    Returns:
        tensor ``(batch, P, k, C)`` with ``out[b, i, j] = features[b, indices[b, i, j]]``.
    """
    shape = ops.shape(indices)
    batch_size, num_points, k = shape[0], shape[1], shape[2]
    channels = features.shape[-1]
    if channels is None:
        channels = ops.shape(features)[-1]
    # One flat gather: row b * P + index, the batch offset broadcast (not tiled).
    offset = ops.reshape(ops.arange(batch_size, dtype=indices.dtype) * num_points, (-1, 1, 1))
    flat_indices = ops.reshape(indices + offset, (-1,))
    flat_features = ops.reshape(features, (-1, channels))
    neighbors = ops.take(flat_features, flat_indices, axis=0)
    return ops.reshape(neighbors, (batch_size, num_points, k, channels))


def is_integer(tensor):
    """Whether ``tensor`` holds integers (neighbour indices) rather than coordinates."""
    return "int" in keras.backend.standardize_dtype(tensor.dtype)


# Weightless layers whose output is a linear function of their inputs.
LINEAR_LAYERS = (keras.layers.InputLayer, keras.layers.Subtract, keras.layers.Add, keras.layers.Concatenate,
                 keras.layers.Identity)


def split_kernel(kernel):
    """Split a kernel network ``[x_i, x_j] -> h`` at its first Dense layer, for
    ``EdgeConv(dense_per_point=True)``.

    Returns ``(prefix, dense, rest)``: ``prefix`` a Model ``[x_i, x_j] -> z`` made of
    weightless linear layers only (:data:`LINEAR_LAYERS`), ``dense`` the Dense layer
    applied to ``z``, and ``rest`` a Model from the Dense layer's output to the kernel's
    output (``None`` when the Dense layer is the output), so that
    ``kernel([x_i, x_j]) == rest(dense(prefix([x_i, x_j])))``. Raises ValueError when the
    kernel has no such split.
    """
    output = kernel.outputs[0]
    for dense in kernel.layers:
        if not isinstance(dense, keras.layers.Dense):
            continue
        try:
            prefix = keras.Model(kernel.inputs, dense.input)
            rest = None if dense.output is output else keras.Model(dense.output, output)
        except Exception:  # not on the path, used twice, or the output needs more than the Dense layer
            continue
        if all(isinstance(layer, LINEAR_LAYERS) for layer in prefix.layers):
            return prefix, dense, rest
    found = ", ".join(type(layer).__name__ for layer in kernel.layers)
    raise ValueError(
        "dense_per_point=True needs a kernel network that feeds [x_i, x_j] through Subtract, Add, Concatenate "
        "or Identity layers only into one Dense layer, on which its output depends alone (as "
        f"Concatenate([x_i, Subtract()([x_i, x_j])]) -> Dense -> ...); its layers are: {found}."
    )


@keras.saving.register_keras_serializable(package="edgeconv")
class NeighborIndices(keras.layers.Layer):
    """The k nearest neighbours of every point, as a layer: the graph that
    ``EdgeConv`` called on ``[indices, features]`` uses, computed once for all the
    layers that share it.

    Args:
        next_neighbors: int, the number k of nearest neighbours.
        knn_method: ``"auto"`` (default), ``"top_k"`` or ``"select"``; see :func:`knn_indices`.

    Call arguments:
        points: tensor ``(batch, P, D)``: coordinates in which distances are measured.

    Shapes:
        output: int32 ``(batch, P, k)``, each point's neighbours by increasing distance,
        the point itself excluded (as ``EdgeConv`` finds them). No gradient.
    """

    def __init__(self, next_neighbors, knn_method="auto", **kwargs):
        super().__init__(**kwargs)
        if isinstance(next_neighbors, bool) or not isinstance(next_neighbors, int) or next_neighbors < 1:
            raise ValueError(f"next_neighbors must be a positive integer, got {next_neighbors!r}.")
        if knn_method not in KNN_METHODS:
            raise ValueError(f"knn_method must be 'auto', 'top_k' or 'select', got {knn_method!r}.")
        self.next_neighbors = next_neighbors
        self.knn_method = knn_method

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"NeighborIndices expects points of shape (batch, points, D), got {tuple(input_shape)}.")
        if input_shape[1] is not None and self.next_neighbors >= input_shape[1]:
            raise ValueError(
                f"next_neighbors must be smaller than the number of points ({input_shape[1]}) since a "
                f"point is never its own neighbour; got next_neighbors={self.next_neighbors}.")
        self.built = True

    def call(self, points):
        return ops.cast(knn_indices(points, self.next_neighbors, method=self.knn_method), "int32")

    def compute_output_spec(self, points):
        return keras.KerasTensor((points.shape[0], points.shape[1], self.next_neighbors), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(next_neighbors=self.next_neighbors, knn_method=self.knn_method)
        return config


@keras.saving.register_keras_serializable(package="edgeconv")
class EdgeConv(keras.layers.Layer):
    r"""Edge convolution of Wang et al., "Dynamic Graph CNN for Learning on Point
    Clouds", ACM Trans. Graph. 38 (2019), arXiv:1801.07829:

    .. math::
        x'_i = \mathop{\square}_{j \in \mathrm{kNN}(i)} h_\Theta(x_i, x_j)

    where the k nearest neighbours of point i are found in ``points`` (never i
    itself), :math:`h_\Theta` is the kernel network applied to every edge and
    :math:`\square` the aggregation (mean, max or sum) over the k neighbours.

    Args:
        kernel_func: the kernel network h. Either a Python function that takes a
            list ``[x_i, x_j]`` of two Keras tensors of shape ``(None, C)`` (the
            central point and one neighbour) and returns one tensor
            ``(None, C')``, or a Keras Model with those inputs and output. A
            function is wrapped into a Model when the layer is built; that Model
            is then ``layer.kernel_func``.
        next_neighbors: int, the number k of nearest neighbours.
        agg_func: ``"mean"`` (default), ``"max"`` or ``"sum"``, or the matching
            ``keras.ops`` function.
        knn_method: how the neighbours are found: ``"auto"`` (default), ``"top_k"`` or
            ``"select"``; see :func:`knn_indices`. The same neighbours either way.
        dense_per_point: ``False`` (default) applies the kernel network to every edge.
            ``True`` applies its first Dense layer to the P points instead of the P·k
            edges and gathers the result (the same output, less work): the kernel must
            feed ``(x_i, x_j)`` through weightless linear layers only (``Subtract``,
            ``Add``, ``Concatenate``, ``Identity``) into one Dense layer, on which the
            rest of it depends, as the textbook's kernel does; otherwise building the
            layer raises a ValueError. Then W·[x_i, x_i − x_j] = (W₁ + W₂)·x_i − W₂·x_j:
            two ``(batch, P, C')`` products, the second gathered at the neighbours.

    Call arguments:
        inputs: ``[points, features]``: the graph is built from ``points``
            ``(batch, P, D)`` and the convolution runs over ``features``
            ``(batch, P, C)`` (a fixed graph); or one tensor ``(batch, P, C)``,
            or ``[y, y]``: the graph is built in feature space (a dynamic graph);
            or ``[indices, features]`` with an integer tensor ``indices``
            ``(batch, P, k)`` (from :class:`NeighborIndices` or :func:`knn_indices`): the
            graph is given, nothing is searched.
        training: bool, passed on to the kernel network (BatchNormalization).

    Shapes:
        output: ``(batch, P, C')``.
    """

    def __init__(self, kernel_func, next_neighbors, agg_func="mean", knn_method="auto", dense_per_point=False,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dense_per_point, bool):
            raise ValueError(f"dense_per_point must be True or False, got {dense_per_point!r}.")
        if knn_method not in KNN_METHODS:
            raise ValueError(f"knn_method must be 'auto', 'top_k' or 'select', got {knn_method!r}.")
        if not callable(kernel_func):
            raise ValueError(
                "kernel_func must be a function [x_i, x_j] -> tensor or a Keras Model, "
                f"got {type(kernel_func).__name__}: {kernel_func!r}."
            )
        if isinstance(next_neighbors, bool) or not isinstance(next_neighbors, int) or next_neighbors < 1:
            raise ValueError(f"next_neighbors must be a positive integer, got {next_neighbors!r}.")
        self.kernel_func = kernel_func
        self.next_neighbors = next_neighbors
        self.agg_func = _aggregation_name(agg_func)
        self.knn_method = knn_method
        self.dense_per_point = dense_per_point

    # ----------------------------------------------------------------- shapes
    @staticmethod
    def _split(inputs):
        """``(points, features)`` from any accepted input structure."""
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 1:
                return inputs[0], inputs[0]
            if len(inputs) != 2:
                raise ValueError(
                    "EdgeConv expects [points, features], [y, y] or one tensor, "
                    f"got a list of {len(inputs)} inputs."
                )
            return inputs[0], inputs[1]
        return inputs, inputs

    @classmethod
    def _split_shape(cls, input_shape):
        """``(points_shape, features_shape)``: a shape is a tuple of ints, a list of shapes is not."""
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            points_shape, features_shape = cls._split(list(input_shape))
        else:
            points_shape = features_shape = input_shape
        return tuple(points_shape), tuple(features_shape)

    def _check_shapes(self, points_shape, features_shape):
        for name, shape in (("points", points_shape), ("features", features_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"EdgeConv expects {name} of shape (batch, points, channels), "
                    f"got rank {len(shape)}: {tuple(shape)}."
                )
        for axis, what in ((0, "batch size"), (1, "number of points")):
            a, b = points_shape[axis], features_shape[axis]
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"points and features must have the same {what}, got points "
                    f"{tuple(points_shape)} and features {tuple(features_shape)}."
                )
        num_points = points_shape[1] if points_shape[1] is not None else features_shape[1]
        if num_points is not None and self.next_neighbors >= num_points:
            raise ValueError(
                f"next_neighbors must be smaller than the number of points ({num_points}) "
                f"since a point is never its own neighbour; got next_neighbors={self.next_neighbors}."
            )
        if features_shape[-1] is None:
            raise ValueError(f"the number of feature channels must be known, got features {tuple(features_shape)}.")

    def build(self, input_shape):
        points_shape, features_shape = self._split_shape(input_shape)
        self._check_shapes(points_shape, features_shape)
        channels = features_shape[-1]
        if not isinstance(self.kernel_func, keras.Model):
            x_i = keras.Input((channels,), name="x_i")
            x_j = keras.Input((channels,), name="x_j")
            try:
                output = self.kernel_func([x_i, x_j])
            except Exception as error:
                raise ValueError(
                    "kernel_func failed on its inputs [x_i, x_j], two Keras tensors of shape "
                    f"(None, {channels}): {type(error).__name__}: {error}"
                ) from error
            if isinstance(output, (list, tuple)) or not hasattr(output, "shape"):
                raise ValueError(
                    "kernel_func must return one Keras tensor of shape (None, C'), "
                    f"got {type(output).__name__}: {output!r}."
                )
            self.kernel_func = keras.Model([x_i, x_j], output, name=f"{self.name}_kernel")
        self._check_kernel(channels)
        if self.dense_per_point:
            # Not tracked as attributes: these parts share the kernel network's layers.
            object.__setattr__(self, "_kernel_parts", split_kernel(self.kernel_func))
        self.built = True

    def _check_kernel(self, channels):
        model = self.kernel_func
        input_shapes = [tuple(t.shape) for t in model.inputs]
        if len(input_shapes) != 2 or any(s != (None, channels) for s in input_shapes):
            raise ValueError(
                f"the kernel network must take two inputs of shape (None, {channels}), "
                f"got {input_shapes}."
            )
        if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2 or model.outputs[0].shape[-1] is None:
            raise ValueError(
                "the kernel network must return one 2-D tensor (None, C'), got "
                f"{[tuple(t.shape) for t in model.outputs]}."
            )

    def compute_output_shape(self, input_shape):
        _, features_shape = self._split_shape(input_shape)
        return (features_shape[0], features_shape[1], self.kernel_func.outputs[0].shape[-1])

    # ------------------------------------------------------------------- call
    def find_neighbors(self, points):
        """Indices ``(batch, P, k)`` of each point's k nearest neighbours in ``points``
        ``(batch, P, D)``, the point itself excluded (:func:`knn_indices`)."""
        return knn_indices(points, self.next_neighbors, method=self.knn_method)

    def call(self, inputs, training=None):
        points, features = self._split(inputs)
        k = self.next_neighbors
        if is_integer(points):  # the graph is given
            if points.shape[-1] is not None and points.shape[-1] != k:
                raise ValueError(f"EdgeConv(next_neighbors={k}) was given neighbour indices of shape "
                                 f"{tuple(points.shape)}: expected (batch, points, {k}).")
            indices = points
        else:
            indices = self.find_neighbors(points)  # (B, P, k)
        if self.dense_per_point:
            return self._call_dense_per_point(features, indices, training)
        neighbors = gather_neighbors(features, indices)  # (B, P, k, C)
        centers = ops.broadcast_to(ops.expand_dims(features, 2), ops.shape(neighbors))

        # The kernel network sees every edge once, as one batch of (B * P * k) rows.
        channels = self.kernel_func.inputs[0].shape[-1]
        out_channels = self.kernel_func.outputs[0].shape[-1]
        edges = self.kernel_func(
            [ops.reshape(centers, (-1, channels)), ops.reshape(neighbors, (-1, channels))],
            training=training,
        )
        shape = ops.shape(neighbors)
        edges = ops.reshape(edges, (shape[0], shape[1], k, out_channels))  # (B, P, k, C')
        return AGGREGATIONS[self.agg_func](edges, axis=2)

    def _call_dense_per_point(self, features, indices, training):
        """The kernel network with its first Dense layer on the points (``dense_per_point``)."""
        prefix, dense, rest = self._kernel_parts
        channels = features.shape[-1]
        # The linear prefix z = x_i·M_i + x_j·M_j, read off from the basis vectors (a few
        # tiny constant ops that a compiler folds), then the Dense kernel W: per point
        # x·(M_i W) (+ bias) for the centre and x·(M_j W) for the neighbour.
        eye = ops.eye(channels, dtype=features.dtype)
        zero = ops.zeros_like(eye)
        kernel = ops.cast(dense.kernel, features.dtype)
        weights = ops.concatenate([ops.matmul(prefix([eye, zero]), kernel), ops.matmul(prefix([zero, eye]), kernel)],
                                  axis=-1)  # (C, 2 C')
        per_point = ops.matmul(features, weights)  # (B, P, 2 C')
        width = kernel.shape[-1]
        centre, neighbour = per_point[..., :width], per_point[..., width:]
        if dense.use_bias:
            centre = centre + ops.cast(dense.bias, features.dtype)
        edges = ops.expand_dims(centre, 2) + gather_neighbors(neighbour, indices)  # (B, P, k, C')
        edges = dense.activation(edges)
        if rest is None:
            return AGGREGATIONS[self.agg_func](edges, axis=2)
        shape = ops.shape(edges)
        edges = rest(ops.reshape(edges, (-1, width)), training=training)
        out_channels = self.kernel_func.outputs[0].shape[-1]
        edges = ops.reshape(edges, (shape[0], shape[1], shape[2], out_channels))
        return AGGREGATIONS[self.agg_func](edges, axis=2)

    # -------------------------------------------------------------- saving
    def get_config(self):
        if not isinstance(self.kernel_func, keras.Model):
            raise ValueError(
                "EdgeConv can be serialised once it is built (its kernel network is then a "
                "Keras Model): call the layer or build the model first."
            )
        config = super().get_config()
        config.update(
            kernel_func=keras.saving.serialize_keras_object(self.kernel_func),
            next_neighbors=self.next_neighbors,
            agg_func=self.agg_func,
            knn_method=self.knn_method,
        )
        if self.dense_per_point:  # only where set: older files load unchanged
            config["dense_per_point"] = True
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["kernel_func"] = keras.saving.deserialize_keras_object(config["kernel_func"])
        return cls(**config)

    def __repr__(self):
        kernel = self.kernel_func.name if isinstance(self.kernel_func, keras.Model) else self.kernel_func
        return (f"EdgeConv(kernel_func={kernel}, next_neighbors={self.next_neighbors}, agg_func={self.agg_func!r}, "
                f"knn_method={self.knn_method!r}{', dense_per_point=True' if self.dense_per_point else ''})")


# ------------------------------------------------------------ graphs as inputs
def with_graph_inputs(model):
    """The same model, reading its fixed graphs from inputs instead of searching them.

    A graph found in one of the model's inputs (``EdgeConv`` on ``[points, features]``
    or ``NeighborIndices(points)`` with ``points`` a model input) is the same at every
    step and every epoch; computed once per sample (:func:`neighbor_indices`), it need
    not be searched again while training.

    Args:
        model: a functional Keras model (its top-level ``EdgeConv`` and
            ``NeighborIndices`` layers are looked at; models nested inside are not).

    Returns:
        ``(graph_model, add_graphs)``: ``graph_model`` a ``keras.Model`` that shares every
        layer, and so every weight, of ``model`` (training one trains the other), with
        inputs ``model.inputs`` followed by one int32 input ``(batch, P, k)`` per fixed
        graph, on which those layers are called as ``[indices, features]``; and
        ``add_graphs(inputs, batch_size=256)`` that turns a list of arrays for ``model``
        into the list for ``graph_model`` (the same arrays, then each graph's indices,
        int32 ``(n, P, k)``). ``model`` itself is unchanged: save and evaluate it as before.
    """
    if not isinstance(getattr(model, "_nodes_by_depth", None), dict):
        raise ValueError(f"with_graph_inputs needs a functional Keras model, got {type(model).__name__}.")
    if not callable(getattr(model, "_run_through_graph", None)):
        raise ValueError(f"this Keras ({keras.__version__}) has no Function._run_through_graph: the graph cannot be "
                         "given as an input (the model trains as it is).")
    inputs = [keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name) for x in model.inputs]
    graphs = {}  # (input position, k) -> graph input

    def graph_of(tensor, k):
        position = next((i for i, x in enumerate(inputs) if x is tensor), None)
        if position is None or is_integer(tensor):
            return None
        if (position, k) not in graphs:
            graphs[position, k] = keras.Input((tensor.shape[1], k), dtype="int32",
                                              name=f"{model.inputs[position].name}_graph_{k}")
        return graphs[position, k]

    def call(layer, *args, **kwargs):
        if isinstance(layer, NeighborIndices) and args:
            graph = graph_of(args[0], layer.next_neighbors)
            if graph is not None:
                return graph
        if isinstance(layer, EdgeConv) and args:
            points, features = EdgeConv._split(args[0])
            graph = graph_of(points, layer.next_neighbors)
            if graph is not None:
                return layer([graph, features], *args[1:], **kwargs)
        return layer(*args, **kwargs)

    try:
        outputs = model._run_through_graph(inputs, operation_fn=lambda layer: layer, call_fn=call)
    except TypeError as error:  # a Keras whose internal has another signature
        raise ValueError(f"Function._run_through_graph of Keras {keras.__version__} is not the one this code "
                         f"calls ({error}): the graph cannot be given as an input.") from error
    if not graphs:
        raise ValueError("the model has no EdgeConv or NeighborIndices layer whose neighbours are searched in one of "
                         "its inputs: there is no fixed graph to compute once.")
    keys = list(graphs)
    graph_model = keras.Model(inputs + [graphs[key] for key in keys], outputs, name=f"{model.name}_graph_inputs")

    def add_graphs(arrays, batch_size=256):
        arrays = list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]
        return arrays + [neighbor_indices(arrays[position], k, batch_size=batch_size) for position, k in keys]

    return graph_model, add_graphs


_NEIGHBOR_FUNCTIONS = {}
ENGINES = ("auto", "keras", "kdtree")


def neighbor_indices(points, k, batch_size=256, knn_method="auto", engine="auto"):
    """The ``k`` nearest neighbours of every point of every sample, the point itself
    excluded, as NumPy: the graph :func:`knn_indices` finds, computed once outside training.

    Args:
        points: array ``(n, P, D)``.
        k: number of neighbours, ``k < P``.
        batch_size: samples per compiled call (``engine="keras"``).
        knn_method: see :func:`knn_indices` (``engine="keras"``).
        engine: ``"keras"``: :func:`knn_indices` in batches, compiled with XLA on
            TensorFlow and JAX (the same indices as the layer finds); ``"kdtree"``: a
            k-d tree per sample (SciPy's ``cKDTree``, in float64, one thread per CPU core):
            on 2 CPU cores about 3x faster for sky maps (D = 3), with the same neighbour sets but
            where two distances tie to float32 precision (a few rows in a million on sky
            maps), the order within a row by distance too; ``"auto"``: ``"kdtree"`` for
            D <= 3 without a GPU (where SciPy is installed), else ``"keras"``.

    Returns:
        NumPy int32 array ``(n, P, k)``, each row's neighbours by increasing distance.
    """
    import numpy as np

    points = np.asarray(points)
    if points.ndim != 3 or not 0 < k < points.shape[1]:
        raise ValueError(f"expected points (n, P, D) with 0 < k < P, got shape {points.shape} and k={k}.")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if engine == "auto":
        try:
            import scipy.spatial  # noqa: F401

            engine = "kdtree" if points.shape[-1] <= 3 and not on_gpu() else "keras"
        except ImportError:
            engine = "keras"
    if engine == "kdtree":
        return _neighbor_indices_kdtree(points, k)
    key = (keras.backend.backend(), k, knn_method)
    if key not in _NEIGHBOR_FUNCTIONS:
        def function(batch):
            return ops.cast(knn_indices(batch, k, method=knn_method), "int32")

        if key[0] == "jax":
            import jax

            function = jax.jit(function)
        elif key[0] == "tensorflow":
            import tensorflow as tf

            function = tf.function(function, jit_compile=True, reduce_retracing=True)
        _NEIGHBOR_FUNCTIONS[key] = function
    function = _NEIGHBOR_FUNCTIONS[key]
    out = np.empty(points.shape[:2] + (k,), dtype="int32")
    for start in range(0, len(points), batch_size):
        out[start:start + batch_size] = ops.convert_to_numpy(function(points[start:start + batch_size]))
    return out


def _neighbor_indices_kdtree(points, k, chunk=64):
    """:func:`neighbor_indices` with one SciPy k-d tree per sample, one thread per CPU core."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from scipy.spatial import cKDTree

    num_points = points.shape[1]
    position = np.arange(num_points)[:, None]
    out = np.empty(points.shape[:2] + (k,), dtype="int32")

    def one(i):
        sample = points[i].astype("float64")
        _, found = cKDTree(sample).query(sample, k=k + 1)  # the point itself among them, usually first
        # Drop the point itself wherever it is (coincident points may come first), else the farthest.
        keep = np.argsort(found == position, axis=1, kind="stable")[:, :k]
        out[i] = np.take_along_axis(found, keep, axis=1)

    def run(start):
        for i in range(start, min(start + chunk, len(points))):
            one(i)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(run, range(0, len(points), chunk)))
    return out
