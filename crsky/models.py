"""The textbook's kernel network and reference Dynamic Graph CNN (Exercise 10.1)."""

import keras
from keras import layers

from edgeconv import EdgeConv

NUM_POINTS = 500


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


def build_reference_model(num_points=NUM_POINTS, k=8, nodes=(8, 16, 32), bn_momentum=0.99, agg_func="mean"):
    """The textbook's DGCNN: two EdgeConvs on the fixed sky graph, one dynamic.

    Inputs are ``[points (batch, P, 3), features (batch, P, 4)]``, the features being
    (normalised energy, x, y, z); the output is ``(batch, 2)`` softmax probabilities
    (isotropic, signal). With the defaults it has 4,770 parameters (4,434 trainable).
    """
    points_input = layers.Input((num_points, 3), name="points")
    feats_input = layers.Input((num_points, 4), name="features")

    def kernel(width):
        return lambda a: kernel_nn(a, nodes=width, bn_momentum=bn_momentum)

    x = EdgeConv(kernel(nodes[0]), next_neighbors=k, agg_func=agg_func)([points_input, feats_input])
    x = layers.Activation("relu")(x)
    x = EdgeConv(kernel(nodes[1]), next_neighbors=k, agg_func=agg_func)([points_input, x])
    x = layers.Activation("relu")(x)
    x = EdgeConv(kernel(nodes[2]), next_neighbors=k, agg_func=agg_func)([x, x])  # dynamic graph
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
