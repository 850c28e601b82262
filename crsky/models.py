"""The textbook's kernel network and reference Dynamic Graph CNN (Exercise 10.1), the
model inputs built from sky maps, and the layer that makes the energy visible to the
network."""

import keras
import numpy as np
from keras import layers, ops

from edgeconv import EdgeConv, NeighborIndices

NUM_POINTS = 500
# 40 EeV / E over the Auger 2020 spectrum above 10^19.6 eV: mean and standard deviation
# (from crsky.spectrum.EnergySampler, 2 million quantiles; a test checks them).
INVERSE_ENERGY_MEAN = 0.7956
INVERSE_ENERGY_STD = 0.1621


def model_inputs(x):
    """The DGCNN's inputs from maps ``(n, P, 4)``: ``[points (n, P, 3), features (n, P, 4)]``,
    points the unit vectors and features (energy, x, y, z), as the textbook builds them."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise ValueError(f"expected sky maps of shape (n_maps, n_events, 4), got {x.shape}.")
    points = x[..., :3]
    features = np.concatenate([x[..., 3:], points], axis=-1)
    return [points, features]


@keras.saving.register_keras_serializable(package="crsky")
class EnergyScaling(layers.Layer):
    """Turns the features (normalised energy, x, y, z) into (deflection angle, x, y, z).

    The data keep the textbook's format: the energy as log10(E / eV) / 20.5, which above
    40 EeV only spans 0.956-0.99 (standard deviation 0.005, against 0.58 for each
    coordinate), too little for a network to notice. A cosmic ray's deflection is
    proportional to 1 / E, so the layer hands the network the angle (in radians, the unit
    of the coordinates' differences) by which a proton of that energy is deflected in a
    reference field, ``deflection_deg_eev / E`` (default 320 deg EeV, the median JF12
    line-of-sight strength), minus its mean over the energy spectrum. Two cosmic rays of
    one street then differ in this feature by about as much as in position: the energy
    is visible on the scale of the geometry, without drowning it (a standardised 1 / E,
    with unit spread, slowed learning tenfold; docs/physics.md). No trainable weights.
    Registered with Keras, so models saved with it load in safe mode.
    """

    def __init__(self, deflection_deg_eev=320.0, reference_eev=40.0, mean=INVERSE_ENERGY_MEAN, **kwargs):
        super().__init__(**kwargs)
        self.deflection_deg_eev, self.reference_eev, self.mean = float(deflection_deg_eev), float(reference_eev), float(mean)

    def call(self, features):
        log_energy_eev = features[..., :1] * 20.5 - 18.0
        inverse = self.reference_eev * ops.power(10.0, -log_energy_eev)  # 40 EeV / E
        angle_per_unit = self.deflection_deg_eev / self.reference_eev * 0.017453292519943295  # radians
        return ops.concatenate([(inverse - self.mean) * angle_per_unit, features[..., 1:]], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"deflection_deg_eev": self.deflection_deg_eev,
                                       "reference_eev": self.reference_eev, "mean": self.mean}


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
                          energy_scaling=True, energy_deflection_deg_eev=320.0, layer_class=EdgeConv,
                          sky_graph="per_layer", **layer_options):
    """The textbook's DGCNN: two EdgeConvs on the fixed sky graph, one dynamic.

    Inputs are ``[points (batch, P, 3), features (batch, P, 4)]``, the features being
    (normalised energy, x, y, z); the output is ``(batch, 2)`` softmax probabilities
    (isotropic, signal). With the defaults it has 4,770 parameters (4,434 trainable).
    ``layer_class`` (an EdgeConv or a subclass) and ``layer_options`` (e.g.
    ``knn_method="top_k"``) choose the graph layer, for benchmarks and experiments.
    ``energy_scaling``: pass the features through :class:`EnergyScaling` first (no
    parameters, reference field ``energy_deflection_deg_eev``), so that the network can
    see the energy; False is the textbook's model.
    """
    points_input = layers.Input((num_points, 3), name="points")
    feats_input = layers.Input((num_points, 4), name="features")

    def kernel(width):
        return lambda a: kernel_nn(a, nodes=width, bn_momentum=bn_momentum)

    def edgeconv(width):
        return layer_class(kernel(width), next_neighbors=k, agg_func=agg_func, **layer_options)

    features = feats_input
    if energy_scaling:
        features = EnergyScaling(energy_deflection_deg_eev, name="energy_scaling")(feats_input)
    if sky_graph == "shared":
        graph = NeighborIndices(k, knn_method=layer_options.get("knn_method", "auto"), name="sky_graph")(points_input)
    elif sky_graph == "per_layer":
        graph = points_input
    else:
        raise ValueError(f"sky_graph must be 'per_layer' or 'shared', got {sky_graph!r}.")
    x = edgeconv(nodes[0])([graph, features])
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
