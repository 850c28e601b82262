"""The textbook's kernel network and a kernel that reads the edges of the sky graph, the
course's Dynamic Graph CNN (Exercise 10.1), the model inputs built from sky maps, and the
layer that makes the energy visible to the network."""

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


def predict_per_cosmic_ray(model, x, batch_size=250):
    """Per-cosmic-ray probabilities ``(n, P)`` of a member model on maps ``x`` ``(n, P, 4)``
    (inference mode). Raises ValueError for another output shape or non-finite values."""
    out = []
    for start in range(0, len(x), batch_size):
        probability = np.asarray(model.predict_on_batch(model_inputs(x[start:start + batch_size])))
        if probability.ndim == 3 and probability.shape[-1] == 1:
            probability = probability[..., 0]
        if probability.shape != x[start:start + batch_size].shape[:2]:
            raise ValueError(f"a member model outputs one probability per cosmic ray, (n, {x.shape[1]}) or "
                             f"(n, {x.shape[1]}, 1); got {probability.shape}.")
        out.append(probability)
    probability = np.concatenate(out)
    if not np.all(np.isfinite(probability)):
        raise ValueError("the model predicts NaN or infinite values.")
    return probability


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


def textbook_kernel(data, nodes=16, bn_momentum=0.99):
    """The textbook's kernel network h(x_i, x_j) = MLP([x_i, x_i - x_j]).

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
    return _three_dense(x, nodes, bn_momentum)


def _three_dense(x, nodes, bn_momentum):
    for _ in range(3):
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return x


@keras.saving.register_keras_serializable(package="crsky")
class EdgeFeatures(layers.Layer):
    """What an edge of the sky graph says about a street, from ``[x_i, x_j]`` ``(None, 4)``
    each holding (energy feature, x, y, z) of the centre and of a neighbour.

    Output ``(None, 5)``, or ``(None, 8)`` with ``products=True`` (default):
    ``[e_i, e_j - e_i, r_j - r_i, (e_j - e_i) (r_j - r_i)]``: the centre's own energy
    feature (after :class:`EnergyScaling`, its deflection angle in a reference field), the
    energy difference to the neighbour, the offset to the neighbour on the sky (3 Cartesian
    components, radians for small angles) and the offset weighted by the energy difference.
    Along a street the offset grows with the difference in 1/E, so that last product
    points the same way for every pair of the street (it sums up over the neighbours to
    the street's direction) and averages to zero where energies and positions are
    unrelated. The centre's absolute position is left out: on an isotropic full sky it
    carries no information, and in the textbook's kernel it takes nearly all the input
    power of the first Dense layer (docs/physics.md, "The kernel that reads the edge").
    No trainable weights.
    """

    def __init__(self, products=True, **kwargs):
        super().__init__(**kwargs)
        self.products = bool(products)

    def call(self, inputs):
        x_i, x_j = inputs
        energy = x_i[:, :1]
        energy_difference = x_j[:, :1] - energy
        offset = x_j[:, 1:4] - x_i[:, 1:4]
        parts = [energy, energy_difference, offset]
        if self.products:
            parts.append(energy_difference * offset)
        return ops.concatenate(parts, axis=-1)

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) != 2 or any(len(s) != 2 or s[-1] != 4 for s in shapes):
            raise ValueError("EdgeFeatures expects [x_i, x_j] of shape (None, 4) each: (energy feature, x, y, z), "
                             f"got {shapes}.")
        self.built = True

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape[0])[0], 8 if self.products else 5)

    def get_config(self):
        return super().get_config() | {"products": self.products}


def edge_kernel(data, nodes=8, bn_momentum=0.99, products=True):
    """A kernel network for the first EdgeConv on the sky that reads the edge.

    h(x_i, x_j) = MLP(BatchNormalization(:class:`EdgeFeatures`([x_i, x_j]))): the centre's
    energy feature, the energy difference, the offset to the neighbour and (``products``)
    the offset weighted by the energy difference, each normalised to unit spread over the
    batch's edges before the three Dense layers, so that an energy difference of a few
    hundredths of a radian weighs as much as an offset. Not the centre's absolute position.

    Args:
        data: list ``[x_i, x_j]`` of Keras tensors ``(None, 4)``: (energy feature, x, y, z).
        nodes: width of the three Dense layers, the output size C'.
        bn_momentum: momentum of every BatchNormalization's running averages.
        products: include the offset weighted by the energy difference (3 channels).

    Returns:
        Keras tensor ``(None, nodes)``.
    """
    x = EdgeFeatures(products=products)(list(data))
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return _three_dense(x, nodes, bn_momentum)


KERNELS = ("auto", "edge", "edge-no-products", "textbook")


def _first_kernel(kernel, energy_scaling):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    if kernel == "auto":
        return "edge" if energy_scaling else "textbook"
    return kernel


def _dgcnn_body(points_input, feats_input, k, nodes, bn_momentum, agg_func, kernel, energy_scaling,
                energy_deflection_deg_eev, layer_class, sky_graph, layer_options):
    """The EdgeConvs of the reference DGCNN: ``(batch, P, nodes[-1])`` per-point features."""
    kernel = _first_kernel(kernel, energy_scaling)

    def textbook(width):
        return lambda a: textbook_kernel(a, nodes=width, bn_momentum=bn_momentum)

    def edgeconv(kernel_func, options):
        return layer_class(kernel_func, next_neighbors=k, agg_func=agg_func, **options)

    features = feats_input
    if energy_scaling:
        features = EnergyScaling(energy_deflection_deg_eev, name="energy_scaling")(feats_input)
    if sky_graph == "shared":
        graph = NeighborIndices(k, knn_method=layer_options.get("knn_method", "auto"), name="sky_graph")(points_input)
    elif sky_graph == "per_layer":
        graph = points_input
    else:
        raise ValueError(f"sky_graph must be 'per_layer' or 'shared', got {sky_graph!r}.")
    if kernel == "textbook":
        first, first_options = textbook(nodes[0]), layer_options
    else:
        products = kernel == "edge"
        first = lambda a: edge_kernel(a, nodes=nodes[0], bn_momentum=bn_momentum, products=products)  # noqa: E731
        # Its edge features are not linear in (x_i, x_j): the first Dense runs per edge.
        first_options = {key: value for key, value in layer_options.items() if key != "dense_per_point"}
    x = edgeconv(first, first_options)([graph, features])
    x = layers.Activation("relu")(x)
    x = edgeconv(textbook(nodes[1]), layer_options)([graph, x])
    x = layers.Activation("relu")(x)
    x = edgeconv(textbook(nodes[2]), layer_options)([x, x])  # dynamic graph
    return layers.Activation("relu")(x)


def build_reference_model(num_points=NUM_POINTS, k=8, nodes=(8, 16, 32), bn_momentum=0.99, agg_func="mean",
                          energy_scaling=True, energy_deflection_deg_eev=320.0, layer_class=EdgeConv,
                          sky_graph="per_layer", kernel="auto", **layer_options):
    """The course's DGCNN: two EdgeConvs on the fixed sky graph, one dynamic.

    Inputs are ``[points (batch, P, 3), features (batch, P, 4)]``, the features being
    (normalised energy, x, y, z); the output is ``(batch, 2)`` softmax probabilities
    (isotropic, signal).

    ``kernel`` chooses the first EdgeConv's kernel network: ``"edge"``
    (:func:`edge_kernel`: offset, energy difference, the centre's energy and their
    products, normalised; 4,802 parameters in all), ``"edge-no-products"`` (the same
    without the products; 4,766), ``"textbook"`` (:func:`textbook_kernel`, [x_i, x_i - x_j];
    4,770 parameters, 4,434 trainable) or ``"auto"`` (default): ``"edge"`` with the energy
    scaling, ``"textbook"`` without. The other two EdgeConvs use :func:`textbook_kernel`.
    ``energy_scaling``: pass the features through :class:`EnergyScaling` first (no
    parameters, reference field ``energy_deflection_deg_eev``), so that the network can
    see the energy; ``energy_scaling=False`` (with ``kernel="auto"``) is the textbook's
    model. ``layer_class`` (an EdgeConv or a subclass) and ``layer_options`` (e.g.
    ``knn_method="top_k"``, ``dense_per_point=True``, which the edge kernel does not take
    and leaves to the later EdgeConvs) choose the graph layer.
    """
    points_input = layers.Input((num_points, 3), name="points")
    feats_input = layers.Input((num_points, 4), name="features")
    x = _dgcnn_body(points_input, feats_input, k, nodes, bn_momentum, agg_func, kernel, energy_scaling,
                    energy_deflection_deg_eev, layer_class, sky_graph, layer_options)
    x = layers.GlobalAveragePooling1D(name="embedding")(x)
    # float32 output even under a mixed-precision policy (a stable softmax and loss).
    out = layers.Dense(2, name="classification", activation="softmax", dtype="float32")(x)
    return keras.Model([points_input, feats_input], out, name="dgcnn")


def build_member_model(num_points=NUM_POINTS, k=8, nodes=(16, 16, 32), head=(32,), bn_momentum=0.9, agg_func="mean",
                       energy_deflection_deg_eev=320.0, layer_class=EdgeConv, **layer_options):
    """A DGCNN with one output per cosmic ray: which cosmic rays came from a source.

    Inputs are ``[points (batch, P, 3), features (batch, P, 4)]`` as for
    :func:`build_reference_model`; the output is ``(batch, P)``: for every cosmic ray the
    probability (sigmoid) that it came from a source. There is no pooling over the cosmic
    rays: the features go through :class:`EnergyScaling`, then three EdgeConvs (the first
    with :func:`edge_kernel` on the sky graph, the second with :func:`textbook_kernel` on
    the sky graph, the third with :func:`textbook_kernel` on the dynamic graph of the
    features computed so far, widths ``nodes``, ``k`` neighbours, a ReLU after each);
    their outputs are concatenated per cosmic ray ``(batch, P, sum(nodes))`` (what each
    cosmic ray's near and wider neighbourhood look like) and a small network of Dense
    layers (widths ``head``, ReLU) applied to each cosmic ray alone ends in one sigmoid.
    ``layer_class`` and ``layer_options`` choose the graph layer, as for
    :func:`build_reference_model`.
    """
    points = layers.Input((num_points, 3), name="points")
    features = layers.Input((num_points, 4), name="features")
    scaled = EnergyScaling(energy_deflection_deg_eev, name="energy_scaling")(features)
    first_options = {key: value for key, value in layer_options.items() if key != "dense_per_point"}

    def edgeconv(kernel_func, options):
        return layer_class(kernel_func, next_neighbors=k, agg_func=agg_func, **options)

    x1 = edgeconv(lambda a: edge_kernel(a, nodes=nodes[0], bn_momentum=bn_momentum), first_options)([points, scaled])
    x1 = layers.Activation("relu")(x1)
    x2 = edgeconv(lambda a: textbook_kernel(a, nodes=nodes[1], bn_momentum=bn_momentum), layer_options)([points, x1])
    x2 = layers.Activation("relu")(x2)
    x3 = edgeconv(lambda a: textbook_kernel(a, nodes=nodes[2], bn_momentum=bn_momentum), layer_options)([x2, x2])
    x3 = layers.Activation("relu")(x3)
    x = layers.Concatenate(axis=-1, name="per_cosmic_ray")([x1, x2, x3])
    for width in head:
        x = layers.Dense(width, activation="relu")(x)  # acts on each cosmic ray alone
    x = layers.Dense(1, activation="sigmoid", dtype="float32", name="membership")(x)
    out = layers.Reshape((num_points,), name="member_probability")(x)
    return keras.Model([points, features], out, name="dgcnn_members")


def compile_textbook(model, learning_rate=3e-3):
    """Compile as the textbook does: binary cross-entropy, Adam(3e-3, weight decay 1e-4)."""
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate, weight_decay=1e-4),
        metrics=["accuracy"],
    )
    return model
