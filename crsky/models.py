"""The textbook's kernel network and reference Dynamic Graph CNN (Exercise 10.1), and the
model inputs built from sky maps."""

import keras
import numpy as np
from keras import layers

from edgeconv import EdgeConv, NeighborIndices

NUM_POINTS = 500


def model_inputs(x):
    """The DGCNN's inputs from maps ``(n, P, 4)``: ``[points (n, P, 3), features (n, P, 4)]``,
    points the unit vectors and features (energy, x, y, z), as the textbook builds them."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise ValueError(f"expected sky maps of shape (n_maps, n_events, 4), got {x.shape}.")
    points = x[..., :3]
    features = np.concatenate([x[..., 3:], points], axis=-1)
    return [points, features]


def kernel_nn(data, nodes=16, bn_momentum=0.99):
    """The textbook's kernel network h(x_i, x_j).

    Args:
        data: list ``[x_i, x_j]`` of Keras tensors ``(None, C)``: central point and neighbour.
        nodes: width of the three Dense layers, the output size C'.
        bn_momentum: momentum of the BatchNormalization running averages (the
            textbook uses the Keras default 0.99).

    Returns:
        Keras tensor ``(None, nodes)``.
    """
    x_i, x_j = data
    difference = layers.Subtract()([x_i, x_j])  # translation invariance
    x = layers.Concatenate(axis=-1)([x_i, difference])  # plus the absolute position
    for _ in range(3):
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return x


def build_reference_model(num_points=NUM_POINTS, k=8, nodes=(8, 16, 32), bn_momentum=0.99, agg_func="mean",
                          layer_class=EdgeConv, sky_graph="per_layer", **layer_options):
    """The textbook's DGCNN: two EdgeConvs on the fixed sky graph, one dynamic.

    Inputs are ``[points (batch, P, 3), features (batch, P, 4)]``, the features being
    (normalised energy, x, y, z); the output is ``(batch, 2)`` softmax probabilities
    (isotropic, signal). With the defaults it has 4,770 parameters (4,434 trainable).
    ``layer_class`` (an EdgeConv or a subclass) and ``layer_options`` (e.g.
    ``knn_method="top_k"``) choose the graph layer, for benchmarks and experiments.
    """
    points_input = layers.Input((num_points, 3), name="points")
    feats_input = layers.Input((num_points, 4), name="features")

    def kernel(width):
        return lambda a: kernel_nn(a, nodes=width, bn_momentum=bn_momentum)

    def edgeconv(width):
        return layer_class(kernel(width), next_neighbors=k, agg_func=agg_func, **layer_options)

    if sky_graph == "shared":
        graph = NeighborIndices(k, knn_method=layer_options.get("knn_method", "auto"), name="sky_graph")(points_input)
    elif sky_graph == "per_layer":
        graph = points_input
    else:
        raise ValueError(f"sky_graph must be 'per_layer' or 'shared', got {sky_graph!r}.")
    x = edgeconv(nodes[0])([graph, feats_input])
    x = layers.Activation("relu")(x)
    x = edgeconv(nodes[1])([graph, x])
    x = layers.Activation("relu")(x)
    x = edgeconv(nodes[2])([x, x])  # dynamic graph
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling1D(name="embedding")(x)
    # float32 output even under a mixed-precision policy (a stable softmax and loss).
    out = layers.Dense(2, name="classification", activation="softmax", dtype="float32")(x)
    return keras.Model([points_input, feats_input], out, name="dgcnn")


def compile_textbook(model, learning_rate=3e-3):
    """Compile as the textbook does: binary cross-entropy, Adam(3e-3, weight decay 1e-4)."""
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate, weight_decay=1e-4),
        metrics=["accuracy"],
    )
    return model
