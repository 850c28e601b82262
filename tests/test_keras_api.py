"""The course uses Keras' public API, except for the internals pyproject.toml names beside its
Keras requirement: the requirement holds the version constraints.txt installs and Colab's,
every private attribute of a Keras model the code reads is one of those named there, and
without them training still works (the speed-ups that use them step aside)."""

import ast
import re
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
SOURCES = sorted([ROOT / "edgeconv.py", *ROOT.glob("crsky/**/*.py")])


def keras_requirement():
    (requirement,) = [Requirement(r) for r in tomllib.loads(PYPROJECT)["project"]["dependencies"]
                      if Requirement(r).name == "keras"]
    return requirement


def pinned(path, name):
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / path).read_text(), flags=re.M)
    assert match, f"no {name}== line in {path}"
    return Version(match.group(1))


def named_internals():
    """The private names listed in the comment above the keras requirement of pyproject.toml."""
    comment = PYPROJECT[PYPROJECT.index("dependencies = ["):PYPROJECT.index('"keras>=')]
    return set(re.findall(r"\b(_[a-z]\w*)\b", comment))


def compiled_functional_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4)(inputs)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_range_holds_the_pinned_the_installed_and_colabs_keras():
    specifier = keras_requirement().specifier
    assert specifier.contains(pinned("constraints.txt", "keras")), (specifier, "constraints.txt")
    assert specifier.contains(Version(keras.__version__)), (specifier, keras.__version__)
    assert specifier.contains(pinned("colab/pip-freeze.txt", "keras")), (specifier, "Colab")
    # No upper bound: pip would replace Colab's Keras once Colab ships a newer one.
    assert all(s.operator == ">=" for s in specifier), specifier


def test_without_the_internals_the_model_trains_the_plain_way(monkeypatch):
    """A Keras whose Function lacks ``_run_through_graph`` (or calls it otherwise): the fixed
    graph is not given as an input, and the model trains as it is."""
    from crsky import training
    from crsky.models import build_reference_model

    model = build_reference_model(num_points=20)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    monkeypatch.setattr(type(model), "_run_through_graph", None, raising=False)
    assert training.fixed_graph_trainer(model) == (model, None)

    def other_signature(self, inputs, operation_fn):
        raise AssertionError("not reached")

    monkeypatch.setattr(type(model), "_run_through_graph", other_signature, raising=False)
    assert training.fixed_graph_trainer(model) == (model, None)
    monkeypatch.undo()  # Functional.call runs through that internal too: the model trains with the real one
    x = np.random.default_rng(0).normal(size=(4, 20, 4)).astype("float32")
    x[..., :3] /= np.linalg.norm(x[..., :3], axis=-1, keepdims=True)
    model.fit(training.model_inputs(x), np.eye(2)[[0, 1, 0, 1]], epochs=1, batch_size=4, verbose=0)
    assert int(model.optimizer.iterations) == 1


def test_every_private_keras_attribute_read_is_named_beside_the_range():
    """Private attributes (``x._name``, not of ``self``/``cls``) that a compiled functional
    Keras model has: each must be named in pyproject.toml; each named one must exist in the
    installed Keras (else the pin's reason is stale)."""
    model = compiled_functional_model()
    used = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in ("self", "cls")):
                name = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                name = node.args[1].value  # getattr(model, "_name", ...)
            else:
                continue
            if re.fullmatch(r"_[a-z]\w*", name) and hasattr(model, name):
                used.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    named = named_internals()
    unnamed = {name: where for name, where in used.items() if name not in named}
    assert not unnamed, f"private Keras attributes not named beside the keras range in pyproject.toml: {unnamed}"
    assert named == set(used), f"named in pyproject.toml but no longer used: {named - set(used)}"
    assert all(hasattr(model, name) for name in named)


def test_the_fixed_graph_trainer_is_compiled_from_the_public_config():
    from crsky import training
    from crsky.models import build_reference_model

    def students_loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    model = build_reference_model(num_points=20)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=students_loss, metrics=["accuracy"],
                  jit_compile=False, steps_per_execution=2)
    if Version(keras.__version__) < Version("3.14"):  # Colab's: a functional model may not leave an input unused
        assert training.fixed_graph_trainer(model) == (model, None)
        return
    trainer, add_graphs = training.fixed_graph_trainer(model)
    assert trainer is not model and add_graphs is not None
    assert trainer.optimizer is model.optimizer and trainer.loss is students_loss
    assert (trainer.jit_compile, trainer.steps_per_execution) == (False, 2)
    x = np.random.default_rng(0).normal(size=(4, 20, 4)).astype("float32")
    x[..., :3] /= np.linalg.norm(x[..., :3], axis=-1, keepdims=True)
    trainer.fit(add_graphs(training.model_inputs(x)), np.array([0, 1, 0, 1]), epochs=1, batch_size=4, verbose=0)
    assert int(model.optimizer.iterations) == 1  # the shared optimizer stepped: the model trained

    # A loss Keras cannot rebuild from the config (a lambda): the model trains as it is.
    model.compile(optimizer="adam", loss=lambda y_true, y_pred: students_loss(y_true, y_pred))
    assert training.fixed_graph_trainer(model) == (model, None)


@pytest.mark.parametrize("name", ["_run_through_graph", "_symbolic_build"])
def test_the_named_internals_have_the_signatures_the_code_calls(name):
    import inspect

    parameters = list(inspect.signature(getattr(compiled_functional_model(), name)).parameters)
    assert parameters == {"_run_through_graph": ["inputs", "operation_fn", "call_fn"],
                          "_symbolic_build": ["iterator", "data_batch"]}[name], parameters
