"""crsky.checks: the facts the notebooks' tests read agree with Keras, numpy and networkx on
honest objects, and do not take a lying object's word."""

import keras
import networkx as nx
import numpy as np
import pytest
from keras import layers

from crsky import checks
from crsky.models import EnergyScaling, build_member_model, build_reference_model, model_inputs
from edgeconv import EdgeConv

pytestmark = pytest.mark.keras


def _maps(n=2, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 500, 3))
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.concatenate([vectors, rng.uniform(0.1, 1.0, (n, 500, 1))], axis=-1).astype("float32")


@pytest.mark.parametrize("build", [build_reference_model, build_member_model])
def test_network_reads_what_keras_reports_for_an_honest_model(build):
    model = build()
    net = checks.network(model)
    assert net.parameters == model.count_params()
    assert net.trainable_parameters == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert net.input_shapes == [tuple(t.shape) for t in model.inputs]
    assert net.output_shapes == [tuple(t.shape) for t in model.outputs]
    assert [type(layer) for layer in net.layers] == [type(layer) for layer in model.layers]
    first = net.layers_of(EdgeConv)[0]
    assert net.inputs_of(first)[0] is net.inputs[0]
    assert net.layers_of(EnergyScaling)
    x = _maps()
    assert np.allclose(net.predict(model_inputs(x)), keras.ops.convert_to_numpy(model(model_inputs(x), training=False)))


def _small_model(cls=keras.Model):
    inputs = keras.Input((4,))
    return cls(inputs, layers.Dense(3)(layers.Dense(100)(inputs)))


def test_a_model_class_that_redefines_keras_attributes_fails_with_the_names():
    class Lying(keras.Model):
        @property
        def layers(self):
            return []

        def count_params(self):
            return 5

    with pytest.raises(AssertionError, match="redefines Keras's own count_params, layers"):
        checks.network(_small_model(Lying), "the model")


def test_a_subclass_with_only_a_constructor_is_read_as_its_graph():
    class Named(keras.Model):
        def __init__(self, inputs, outputs):
            super().__init__(inputs, outputs, name="named")

    model = _small_model(Named)
    assert checks.network(model).parameters == model.count_params() == 4 * 100 + 100 + 100 * 3 + 3


def test_an_instance_count_params_fails_and_type_made_classes_are_read_too():
    model = _small_model()
    model.count_params = lambda: 5
    with pytest.raises(AssertionError, match="count_params"):
        checks.network(model)
    renamed = type("Network", (keras.Model,), {"count_params": lambda self: 5})
    with pytest.raises(AssertionError, match="redefines Keras's own count_params"):
        checks.network(_small_model(renamed))


def test_a_layer_whose_weights_lie_is_counted_from_its_variables():
    class Quiet(layers.Dense):
        @property
        def weights(self):
            return []

        @property
        def trainable_weights(self):
            return []

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Quiet(50)(inputs))
    assert checks.network(model).parameters == 4 * 50 + 50
    assert checks.network(model).trainable_parameters == 4 * 50 + 50


def test_not_a_functional_model():
    with pytest.raises(AssertionError, match="functional keras.Model"):
        checks.network(keras.Sequential([layers.Dense(2)]))
    with pytest.raises(AssertionError, match="functional keras.Model"):
        checks.network("a model")


def test_the_optimizer_is_what_compile_stored_and_its_exact_type_shows():
    class Adamish(keras.optimizers.SGD):
        @property
        def __class__(self):
            return keras.optimizers.Adam

    model = _small_model()
    model.compile(optimizer=Adamish(0.1), loss="mse")
    optimizer = checks.compiled_optimizer(model)
    assert isinstance(optimizer, keras.optimizers.Adam)       # what a test that asks believes
    assert type(optimizer) is Adamish                          # what the exact type says
    with pytest.raises(AssertionError, match="not compiled"):
        checks.compiled_optimizer(_small_model())


def test_symbolic_shape_takes_only_keras_tensors():
    tensor = layers.Dense(5)(keras.Input((3,)))
    assert checks.symbolic_shape(tensor) == (None, 5)

    class Narrow(keras.KerasTensor):
        @property
        def shape(self):
            return (None, 4)

    tensor.__class__ = Narrow
    with pytest.raises(AssertionError, match="keras.KerasTensor"):
        checks.symbolic_shape(tensor)


def test_digraph_edges_reads_the_adjacency_not_the_methods():
    graph = nx.DiGraph([(0, 1), (1, 0), (2, 0)])
    assert checks.digraph_edges(graph) == ([0, 1, 2], [(0, 1), (1, 0), (2, 0)])

    class Lying(nx.DiGraph):
        def number_of_edges(self, u=None, v=None):
            return 100

    with pytest.raises(AssertionError, match="networkx.DiGraph"):
        checks.digraph_edges(Lying([(0, 1)]))
    graph.number_of_edges = lambda: 100          # on the instance: the adjacency still tells
    assert len(checks.digraph_edges(graph)[1]) == 3


def test_plain_values_drop_what_a_subclass_says():
    class Count(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__

    assert Count(3) == 7
    assert checks.plain_int(Count(3)) != 7 and type(checks.plain_int(Count(3))) is int
    assert checks.plain_int(np.int64(4)) == 4
    with pytest.raises(AssertionError, match="integer"):
        checks.plain_int(4.0)

    class Degrees(np.ndarray):
        def __gt__(self, other):
            return np.ones(self.shape, bool)

    lon, = checks.plain_arrays([np.array([400.0]).view(Degrees)])
    assert type(lon) is np.ndarray and not (lon > 1000).any()
