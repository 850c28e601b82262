"""Training and evaluating the reference DGCNN with a stable recipe.

The textbook trains with Adam at a constant 3e-3 and BatchNormalization's default
momentum 0.99 inside the kernel networks. Its validation accuracy then swings from
epoch to epoch: inference uses the BatchNormalization running averages, which lag
behind weights that still move fast. The recipe here lets them keep up: momentum
0.9, and a learning rate that starts at the textbook's 3e-3 and decays to zero along a
cosine, so that the weights settle while the averages catch up.
"""

import time

import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from crsky.models import build_reference_model, model_inputs


def compile_stable(model, steps, learning_rate=3e-3, weight_decay=1e-4, jit_compile="auto", steps_per_execution=1):
    """Compile with Adam and a cosine-decaying learning rate over ``steps`` training steps."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(schedule, weight_decay=weight_decay),
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def fast_jit_compile():
    """XLA where it speeds up the reference model: always on JAX; on TensorFlow too
    (on 2 CPU cores 0.76x the ms/step of plain graph mode, see bench/bench_training.py)."""
    return True if keras.backend.backend() in ("tensorflow", "jax") else "auto"


def train_reference(x_train, y_train, x_val=None, y_val=None, epochs=10, batch_size=64, learning_rate=3e-3,
                    bn_momentum=0.9, verbose=1, callbacks=(), steps_per_execution=1, **model_options):
    """Build and train the reference DGCNN on maps ``(n, 500, 4)`` with integer labels,
    validating on ``x_val, y_val`` when given (and not empty). ``model_options`` go to
    :func:`crsky.models.build_reference_model` (e.g. ``energy_scaling``, ``layer_class``, ``knn_method``).

    Returns ``(model, history)``; the history also holds ``seconds_per_epoch``.
    """
    model = build_reference_model(num_points=x_train.shape[1], bn_momentum=bn_momentum, **model_options)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    compile_stable(model, steps, learning_rate, jit_compile=fast_jit_compile(),
                   steps_per_execution=steps_per_execution)
    validation = None if x_val is None or len(x_val) == 0 else (model_inputs(x_val), keras.utils.to_categorical(y_val, 2))
    start = time.perf_counter()
    history = model.fit(
        model_inputs(x_train), keras.utils.to_categorical(y_train, 2), validation_data=validation,
        batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=list(callbacks),
    )
    history.history["seconds_per_epoch"] = (time.perf_counter() - start) / epochs
    return model, history


def permute_energies(x, seed=0):
    """A copy of maps ``(n, P, 4)`` with the energies (column 3) shuffled within each map:
    the same cosmic rays and energies, no link between a direction and its energy. A model
    that uses the energy ordering of streets loses accuracy on such maps."""
    rng = np.random.default_rng(seed)
    x = np.array(x, copy=True)
    order = np.argsort(rng.random(x.shape[:2]), axis=1)
    x[..., 3] = np.take_along_axis(x[..., 3], order, axis=1)
    return x


def evaluate(model, x, y, batch_size=256):
    """Test accuracy and ROC AUC of a trained model on maps ``x`` with integer labels ``y``.

    Returns ``(accuracy, auc, signal_probability)``.
    """
    probability = model.predict(model_inputs(x), batch_size=batch_size, verbose=0)[:, 1]
    if not np.all(np.isfinite(probability)):
        raise ValueError("the model predicts NaN or infinite probabilities.")
    accuracy = float(np.mean((probability > 0.5) == y))
    return accuracy, float(roc_auc_score(y, probability)), probability


def trained_or_quick_model(saved, x_train, y_train, x_val=None, y_val=None, n_maps=2000):
    """A model for looking inside: the one saved at ``saved`` when it exists, else a quick one
    (one epoch on at most ``n_maps`` training maps: it learns little, but its graphs show the
    idea). While nbgrader runs the notebook (autograde, Validate) nothing is trained: an
    untrained reference model stands in. Returns ``(model, how it was made)``."""
    from pathlib import Path

    from crsky import course
    from crsky.grading.scoring import load_submitted_model

    saved = Path(saved)
    if saved.is_file():
        return load_submitted_model(saved), f"loaded {saved}"
    if course.grading_run():
        return build_reference_model(num_points=x_train.shape[1]), "an untrained model (nothing is trained while grading)"
    model, _ = train_reference(x_train[:n_maps], y_train[:n_maps], x_val, y_val, epochs=1, verbose=0)
    return model, f"trained a small model for this notebook (no {saved} found)"


def fit_unless_grading(model, train, val, size, save_as="dgcnn.keras"):
    """Notebook 3's training step: fit the compiled ``model`` on ``train = (x, y)`` maps
    ``(n, 500, 4)`` with integer labels, validating on ``val``, for ``size.epochs`` epochs
    in batches of ``size.batch_size`` (a :class:`crsky.experiment.Size`), then save it to
    ``save_as``. Returns ``(model, history)``.

    While nbgrader runs the notebook (autograde or Validate) nothing is trained: the model
    saved at ``save_as`` is loaded instead when it is there (else the untrained ``model``
    stays), the history is None, and a line says so.
    """
    from pathlib import Path

    from crsky import course
    from crsky.grading.scoring import load_submitted_model

    if course.grading_run():
        saved = Path(save_as)
        if saved.is_file():
            print(f"Autograding or validating: nothing is trained here; using your saved model {saved}.")
            return load_submitted_model(saved), None
        print(f"Autograding or validating: nothing is trained here, and no {saved} was found.")
        return model, None
    (x_train, y_train), (x_val, y_val) = train, val
    validation = (model_inputs(x_val), keras.utils.to_categorical(y_val, 2)) if len(x_val) else None
    history = model.fit(model_inputs(x_train), keras.utils.to_categorical(y_train, 2), validation_data=validation,
                        batch_size=size.batch_size, epochs=size.epochs)
    model.save(save_as)
    print(f"saved the trained model to {save_as}: submit it with this notebook")
    return model, history
