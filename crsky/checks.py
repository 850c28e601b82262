"""What the notebooks' tests read of an answer: facts from trusted primitives, never from
what the answer's objects say about themselves.

A test that asks an object (``model.count_params()``, ``model.layers``, ``isinstance(opt,
Adam)``, ``graph.number_of_edges()``, ``count == 1``) believes whatever the object's class
answers, and a class is the student's to write. The functions here read the facts from
where the object's behaviour comes from:

* :func:`network`: a Keras model's graph, mapped again by Keras from the tensors the model
  really holds (its own ``__dict__``, read past its class); the layers' exact types; the
  parameters counted from the variables each layer tracks; predictions made by a model
  Keras rebuilds over that graph. The model's class may add a constructor but may not
  redefine what Keras defines (``layers``, ``weights``, ``count_params``, ``call`` ...),
  and the object may not carry attributes of its own over Keras's methods.
* :func:`compiled_optimizer`: the optimizer a compiled model trains with, its exact type.
* :func:`symbolic_shape`: the shape of a Keras symbolic tensor, which must be exactly a
  ``keras.KerasTensor``.
* :func:`digraph_edges`: the nodes and edges of a ``networkx.DiGraph`` from its own
  adjacency dicts (exact types), not from its methods.
* :func:`plain_arrays`: values as plain ``numpy.ndarray`` (no subclass: comparisons are
  numpy's own).

Each raises ``AssertionError`` with a sentence a student can act on, so a test that uses
them fails like any other assert. The functions here are the course's, imported by the
test cells: the grader's protected run (crsky.grading.runner) puts them back if a
student's cell replaced them. Keras is imported only by the functions that read Keras objects
(notebook 1 runs without it).
"""

import functools
import types

import numpy as np


@functools.cache
def _functional_class():
    """The class ``keras.Model(inputs, outputs)`` makes (Keras's Functional), without naming its private module."""
    import keras

    inputs = keras.Input((1,))
    return type(keras.Model(inputs, keras.layers.Identity()(inputs)))


# What a functional model's class may define itself: how it is built and saved.
_ALLOWED_OVERRIDES = frozenset({"__init__", "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                                "__firstlineno__", "__static_attributes__", "__annotations__", "__slotnames__",
                                "get_config", "from_config", "_abc_impl"})


def _instance_dict(obj):
    """The object's own attribute dict, read with the descriptor of the class that gave it one
    (a ``__dict__`` property of the object's class cannot change what comes back)."""
    for cls in reversed(type.__dict__["__mro__"].__get__(type(obj))):
        descriptor = type.__dict__["__dict__"].__get__(cls).get("__dict__")
        if type(descriptor) is types.GetSetDescriptorType:
            return descriptor.__get__(obj)
    raise AssertionError(f"a {type(obj).__name__} has no attributes of its own")


def _class_redefinitions(obj, base):
    """Names of ``base``'s attributes that the classes between ``type(obj)`` and ``base`` redefine."""
    found = []
    for cls in type.__dict__["__mro__"].__get__(type(obj)):
        if cls is base:
            break
        for name in type.__dict__["__dict__"].__get__(cls):
            if name not in _ALLOWED_OVERRIDES and hasattr(base, name):
                found.append(name)
    return sorted(set(found))


# Methods of a model that the tests and Keras's training call through the object. (Keras puts some
# wrappers of its own on every instance, ``build`` and ``quantize``; these it never does.)
_MODEL_METHODS = frozenset({"__call__", "call", "count_params", "compile", "fit", "evaluate", "predict",
                            "train_step", "test_step", "predict_step", "compute_loss", "compute_metrics",
                            "get_weights", "set_weights", "summary", "save", "get_layer"})


def _shadowed_methods(obj):
    """Attributes of the object itself that hide a method of its class (``model.count_params = ...``)."""
    return sorted(name for name in _instance_dict(obj) if name in _MODEL_METHODS)


def _variables(layer, seen):
    """The distinct variables a layer tracks itself and through its sub-layers, read from their
    own dicts (as Keras's ``Layer.weights`` collects them)."""
    state = _instance_dict(layer)
    found = []
    for variable in list(state.get("_trainable_variables", ())) + list(state.get("_non_trainable_variables", ())):
        if id(variable) not in seen:
            seen.add(id(variable))
            found.append(variable)
    for sub in state.get("_layers", ()):
        found += _variables(sub, seen)
    return found


def _size(variable):
    import keras

    return int(np.asarray(keras.ops.convert_to_numpy(variable)).size)


class Network:
    """A functional Keras model's graph as Keras maps it (see :func:`network`).

    ``inputs``, ``outputs``: the graph's tensors; ``layers``: the layers it runs, in order;
    ``input_shapes``, ``output_shapes``: lists of tuples such as ``(None, 500, 3)``."""

    def __init__(self, inputs, outputs, rebuilt):
        import keras

        self.inputs, self.outputs, self._model = tuple(inputs), tuple(outputs), rebuilt
        self.layers = tuple(operation for operation in _instance_dict(rebuilt)["_operations"]
                            if issubclass(type(operation), keras.layers.Layer))
        self.input_shapes = [tuple(symbolic_shape(t)) for t in self.inputs]
        self.output_shapes = [tuple(symbolic_shape(t)) for t in self.outputs]

    def layers_of(self, cls, nested=False):
        """The layers whose real type is ``cls`` or a subclass of it, in graph order; with
        ``nested``, also those inside the graph's layers (a ``keras.Sequential``, a Layer
        holding layers of its own), read from each layer's own dict, each layer once."""
        found, seen = [], set()

        def visit(layer, depth):
            if id(layer) in seen:
                return
            seen.add(id(layer))
            if issubclass(type(layer), cls):
                found.append(layer)
            if nested and depth < 32:
                for sub in _instance_dict(layer).get("_layers", ()):
                    visit(sub, depth + 1)

        for layer in self.layers:
            visit(layer, 0)
        return found

    def _calls(self):
        """The graph's calls (Keras nodes), inputs first."""
        by_depth = _instance_dict(self._model)["_nodes_by_depth"]
        for depth in sorted(by_depth, reverse=True):
            yield from by_depth[depth]

    def made_by(self, tensor):
        """``(layer, its input tensors)`` of the graph's call that produced ``tensor``, or None
        for one of the graph's inputs."""
        for node in self._calls():
            if any(out is tensor for out in node.output_tensors) and node.input_tensors:
                return node.operation, list(node.input_tensors)
        return None

    def inputs_of(self, layer):
        """The tensors the graph feeds ``layer`` (its first call in the graph), in order."""
        for node in self._calls():
            if node.operation is layer:
                return list(node.input_tensors)
        raise AssertionError(f"layer {layer.name!r} is not called in the network")

    @property
    def parameters(self):
        """Number of scalars in the variables of the layers the graph runs (trainable or not)."""
        seen = set()
        return sum(_size(v) for layer in self.layers for v in _variables(layer, seen))

    @property
    def trainable_parameters(self):
        """Number of scalars in the trainable variables of the layers the graph runs."""
        seen, total = set(), 0
        for layer in self.layers:
            for variable in _variables(layer, seen):
                if bool(_instance_dict(variable).get("_trainable", True)):
                    total += _size(variable)
        return total

    def predict(self, inputs):
        """The graph's output on ``inputs`` (numpy, inference mode), computed by a model Keras
        rebuilt over the same layers: shape ``(batch, ...)`` of the first output."""
        import keras

        out = self._model(inputs, training=False)
        first = out[0] if isinstance(out, (list, tuple)) else out
        return np.asarray(keras.ops.convert_to_numpy(first))


def network(model, what="the model"):
    """The graph of a functional Keras model (``keras.Model(inputs, outputs)``), as a
    :class:`Network`. Raises AssertionError, naming ``what``, for anything else: an object that
    is not a functional model, a class that redefines Keras's own attributes, an object that
    carries its own attributes over Keras's methods."""
    import keras

    functional = _functional_class()
    if not issubclass(type(model), functional):
        raise AssertionError(f"{what} should be a functional keras.Model(inputs, outputs), got a "
                             f"{type(model).__module__}.{type(model).__qualname__}")
    redefined = _class_redefinitions(model, functional)
    if redefined:
        raise AssertionError(f"{what}'s class {type(model).__qualname__} redefines Keras's own "
                             f"{', '.join(redefined)}: the tests read the network itself; build it with "
                             "keras.Model(inputs, outputs)")
    shadowed = _shadowed_methods(model)
    if shadowed:
        raise AssertionError(f"{what} carries attributes of its own over Keras's methods: {', '.join(shadowed)}")
    state = _instance_dict(model)
    inputs, outputs = list(state.get("_inputs") or ()), list(state.get("_outputs") or ())
    if not inputs or not outputs:
        raise AssertionError(f"{what} has no inputs or outputs: build it with keras.Model(inputs, outputs)")
    try:
        rebuilt = keras.Model(inputs, outputs)
    except Exception as error:  # noqa: BLE001 (a graph Keras cannot map: the student's to fix)
        raise AssertionError(f"Keras cannot map the graph of {what}: {type(error).__name__}: {error}") from None
    return Network(inputs, outputs, rebuilt)


def compiled_optimizer(model, what="the model"):
    """The optimizer Keras trains ``model`` with (what ``compile`` stored on the object itself)."""
    optimizer = _instance_dict(model).get("optimizer")
    if optimizer is None:
        raise AssertionError(f"{what} is not compiled with an optimizer")
    return optimizer


def symbolic_shape(tensor, what="the output"):
    """``tuple`` shape of a Keras symbolic tensor (``keras.KerasTensor`` exactly)."""
    import keras

    if type(tensor) is not keras.KerasTensor:
        raise AssertionError(f"{what} should be the symbolic tensor a Keras layer returns (keras.KerasTensor), "
                             f"got a {type(tensor).__module__}.{type(tensor).__qualname__}")
    return tuple(_instance_dict(tensor)["_shape"])


def digraph_edges(graph, what="the graph"):
    """``(nodes, edges)`` of a ``networkx.DiGraph`` (exactly that class) as plain lists, read from
    its adjacency dicts: nodes in insertion order, edges as ``(i, j)`` pairs."""
    import networkx as nx

    if type(graph) is not nx.DiGraph:
        raise AssertionError(f"{what} should be a networkx.DiGraph, got a "
                             f"{type(graph).__module__}.{type(graph).__qualname__}")
    state = _instance_dict(graph)
    nodes, successors = state.get("_node"), state.get("_succ")
    if type(nodes) is not dict or type(successors) is not dict or \
            any(type(targets) is not dict for targets in successors.values()):
        raise AssertionError(f"{what}'s adjacency is not networkx's own (its _node and _succ dicts were replaced)")
    return list(nodes), [(source, target) for source, targets in successors.items() for target in targets]


def plain_arrays(values, dtype=float):
    """Each of ``values`` as a plain ``numpy.ndarray`` of ``dtype`` (a tuple, in order)."""
    return tuple(np.array(value, dtype=dtype) for value in values)


def plain_int(value, what="the count"):
    """``value`` as a plain ``int`` (through ``operator.index``: an int, a numpy integer)."""
    import operator

    try:
        return int(operator.index(value))
    except TypeError:
        raise AssertionError(f"{what} should be an integer, got a {type(value).__name__}") from None


__all__ = ["Network", "network", "compiled_optimizer", "symbolic_shape", "digraph_edges", "plain_arrays",
           "plain_int"]
