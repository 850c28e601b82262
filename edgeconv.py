"""EdgeConv: the graph convolution of Dynamic Graph CNNs, as a Keras 3 layer.

Written with ``keras.ops`` only, so it runs on the TensorFlow, JAX and PyTorch
backends. It keeps the API of the layer used by "Deep Learning for Physics
Research" (Exercise 10.1): ``EdgeConv(kernel_func, next_neighbors, agg_func)``,
called on ``[points, features]``, on one tensor, or on ``[y, y]``.
"""

import keras
from keras import ops

__all__ = ["EdgeConv", "knn_indices", "pairwise_distances", "gather_neighbors", "on_gpu"]

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

    Call arguments:
        inputs: ``[points, features]``: the graph is built from ``points``
            ``(batch, P, D)`` and the convolution runs over ``features``
            ``(batch, P, C)`` (a fixed graph); or one tensor ``(batch, P, C)``,
            or ``[y, y]``: the graph is built in feature space (a dynamic graph).
        training: bool, passed on to the kernel network (BatchNormalization).

    Shapes:
        output: ``(batch, P, C')``.
    """

    def __init__(self, kernel_func, next_neighbors, agg_func="mean", knn_method="auto", **kwargs):
        super().__init__(**kwargs)
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
        indices = self.find_neighbors(points)  # (B, P, k)
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
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["kernel_func"] = keras.saving.deserialize_keras_object(config["kernel_func"])
        return cls(**config)

    def __repr__(self):
        kernel = self.kernel_func.name if isinstance(self.kernel_func, keras.Model) else self.kernel_func
        return (f"EdgeConv(kernel_func={kernel}, next_neighbors={self.next_neighbors}, agg_func={self.agg_func!r}, "
                f"knn_method={self.knn_method!r})")
