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


def compile_stable(model, steps, learning_rate=3e-3, weight_decay=1e-4, jit_compile="auto", steps_per_execution=1,
                   warmup_steps=0):
    """Compile with Adam and a cosine-decaying learning rate over ``steps`` training steps
    (after ``warmup_steps`` of a linear rise from zero, if any)."""
    if warmup_steps:
        schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - warmup_steps),
                                                          warmup_target=learning_rate, warmup_steps=warmup_steps)
    else:
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


# The same model and arithmetic, less work per step on a CPU (docs/performance.md, "Training
# on CPU"): the sky graph of each map computed once before training, and the kernels' first
# Dense layer applied per point. crsky.main trains with them (fast_options()).
FAST_OPTIONS = {"fixed_graph": True, "dense_per_point": True}


def fast_options():
    """The options of :func:`train_reference` that speed up this machine's training without
    changing what is computed: :data:`FAST_OPTIONS` on a CPU; none on a GPU, where they are
    not measured in ``fit`` yet (``python -m bench.gpu_check --device-data``)."""
    from edgeconv import on_gpu

    return {} if on_gpu() else dict(FAST_OPTIONS)


def train_reference(x_train, y_train, x_val=None, y_val=None, epochs=10, batch_size=64, learning_rate=3e-3,
                    bn_momentum=0.9, verbose=1, callbacks=(), steps_per_execution=1, fixed_graph=False,
                    warmup_steps=0, device_data=False, scan_steps=1, **model_options):
    """Build and train the reference DGCNN on maps ``(n, 500, 4)`` with integer labels,
    validating on ``x_val, y_val`` when given (and not empty). ``model_options`` go to
    :func:`crsky.models.build_reference_model` (e.g. ``energy_scaling``, ``layer_class``, ``knn_method``,
    ``dense_per_point``).

    ``fixed_graph=True`` computes the sky graph of every map once, before training
    (:func:`edgeconv.with_graph_inputs`), instead of at every step: the same model and
    the same results, trained through a model that reads the graph from an input. The
    time to compute it is part of ``seconds_per_epoch`` and is also reported as
    ``history.history["graph_seconds"]``. ``warmup_steps``: a linear rise of the learning
    rate before the cosine (:func:`compile_stable`). ``device_data=True`` feeds ``fit``
    from the training set held on the accelerator (:class:`DeviceBatches`), and there
    ``scan_steps=N > 1`` (JAX) runs ``N`` training steps per call (:func:`scan_train_steps`).

    Returns ``(model, history)``: ``model`` takes ``[points, features]`` either way (save
    and evaluate it as usual; ``history.model`` is the model that was fitted); the
    history also holds ``seconds_per_epoch``.
    """
    training = ReferenceTraining(x_train, y_train, x_val, y_val, epochs=epochs, batch_size=batch_size,
                                 learning_rate=learning_rate, bn_momentum=bn_momentum,
                                 steps_per_execution=steps_per_execution, fixed_graph=fixed_graph,
                                 warmup_steps=warmup_steps, device_data=device_data, scan_steps=scan_steps,
                                 **model_options)
    history = training.fit(verbose=verbose, callbacks=callbacks)
    return training.model, history


def train_from_seed(seed, x_train, y_train, x_val=None, y_val=None, epochs=10, batch_size=64, learning_rate=3e-3,
                    verbose=0):
    """The main job's training of the reference DGCNN: Keras' random seed set to ``seed``,
    then :func:`train_reference` with this machine's :func:`fast_options`, on maps
    ``(n, 500, 4)`` with integer labels. Returns ``(model, history, seconds)``, the wall
    time of the whole training (set-up included)."""
    import time

    import keras

    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model, history = train_reference(x_train, y_train, x_val, y_val, epochs=epochs, batch_size=batch_size,
                                     learning_rate=learning_rate, verbose=verbose, **fast_options())
    return model, history, time.perf_counter() - start


class ReferenceTraining:
    """One training of :func:`train_reference`, set up (model built, graph computed,
    compiled) and then run in one or several parts: ``fit()`` runs the remaining epochs,
    ``fit(until=e)`` those up to epoch ``e``; the learning-rate schedule spans all
    ``epochs`` either way. Benchmarks use the parts to take turns between trainings.

    Attributes: ``model`` (takes ``[points, features]``), ``trainer`` (the model that is
    fitted), ``epoch`` (epochs done), ``seconds`` (wall time so far, set-up included),
    ``history`` (one History over all parts, or None before the first).
    """

    def __init__(self, x_train, y_train, x_val=None, y_val=None, epochs=10, batch_size=64, learning_rate=3e-3,
                 bn_momentum=0.9, steps_per_execution=1, fixed_graph=False, warmup_steps=0, device_data=False,
                 scan_steps=1, **model_options):
        if scan_steps > 1 and not device_data:
            raise ValueError("scan_steps > 1 needs device_data=True (batches stacked by DeviceBatches).")
        start = time.perf_counter()
        self.model = build_reference_model(num_points=x_train.shape[1], bn_momentum=bn_momentum, **model_options)
        self.epochs, self.batch_size, self.epoch, self.history = epochs, batch_size, 0, None
        steps = epochs * int(np.ceil(len(x_train) / batch_size))
        validate = x_val is not None and len(x_val) > 0
        graph_start = time.perf_counter()
        train_inputs = model_inputs(x_train)
        val_inputs = model_inputs(x_val) if validate else None
        self.trainer = self.model
        if fixed_graph:
            from edgeconv import with_graph_inputs

            self.trainer, add_graphs = with_graph_inputs(self.model)
            train_inputs = add_graphs(train_inputs)
            val_inputs = add_graphs(val_inputs) if validate else None
        self.graph_seconds = time.perf_counter() - graph_start
        compile_stable(self.trainer, steps, learning_rate, jit_compile=fast_jit_compile(),
                       steps_per_execution=steps_per_execution, warmup_steps=warmup_steps)
        self._validation = (val_inputs, keras.utils.to_categorical(y_val, 2)) if validate else None
        labels = keras.utils.to_categorical(y_train, 2)
        if device_data:
            self._data = {"x": DeviceBatches(train_inputs, labels, batch_size, seed=int(np.random.randint(2**31)),
                                             steps_per_call=scan_steps),
                          "shuffle": False}  # DeviceBatches shuffles
            if scan_steps > 1:
                scan_train_steps(self.trainer)
        else:
            self._data = {"x": train_inputs, "y": labels, "batch_size": batch_size}
        self.seconds = time.perf_counter() - start

    def fit(self, until=None, verbose=1, callbacks=()):
        """Train up to epoch ``until`` (default: all); returns the History of every part so far,
        which also holds ``seconds_per_epoch`` (the wall time so far over the epochs done) and
        ``graph_seconds``."""
        until = self.epochs if until is None else min(int(until), self.epochs)
        if until > self.epoch:
            start = time.perf_counter()
            part = self.trainer.fit(**self._data, validation_data=self._validation, epochs=until,
                                    initial_epoch=self.epoch, verbose=verbose, callbacks=list(callbacks))
            self.seconds += time.perf_counter() - start
            self.epoch = until
            if self.history is None:
                self.history = part
            else:
                for key, values in part.history.items():
                    self.history.history.setdefault(key, []).extend(values)
                self.history.epoch.extend(part.epoch)
        if self.history is not None:
            self.history.history["seconds_per_epoch"] = self.seconds / max(self.epoch, 1)
            self.history.history["graph_seconds"] = self.graph_seconds
        return self.history


class DeviceBatches(keras.utils.PyDataset):
    """Training batches sliced on the accelerator from arrays held there, for ``fit``.

    ``model.fit(x_numpy, y_numpy, batch_size=...)`` slices every shuffled batch from host
    memory and copies it to the device, step after step. Here the arrays are copied to
    the device once; each epoch draws one permutation, and each batch is gathered there
    by one compiled call (JAX), so nothing but an index crosses to the device per step.

    Args:
        x: an array ``(n, ...)`` or a list of them (the model's inputs).
        y: array ``(n, ...)``, the targets.
        batch_size: int; with ``steps_per_call=1`` the last batch of an epoch may be smaller.
        shuffle: draw a new order of the samples every epoch (default True).
        seed: seed of the orders.
        steps_per_call: ``N > 1`` yields ``N`` batches at a time, stacked: arrays
            ``(N, batch_size, ...)`` (the last group of an epoch may hold fewer), for a
            training step that runs them in one call (:func:`scan_train_steps`). Every
            batch is then full: the epoch's order is topped up with its first samples.

    ``model.fit(DeviceBatches(x, y, 64), epochs=..., shuffle=False)``: no ``batch_size``;
    the order is drawn here (``fit``'s default ``shuffle=True`` would also shuffle the
    order in which batches are asked for, which changes nothing but reproducibility). Made for the JAX backend; on the others it works (each batch
    gathered by eager ops), but TensorFlow's ``fit`` copies it through the host again.
    """

    def __init__(self, x, y, batch_size, shuffle=True, seed=0, steps_per_call=1):
        super().__init__()
        self._single = not isinstance(x, (list, tuple))
        arrays = [x] if self._single else list(x)
        self.n = len(y)
        if any(len(a) != self.n for a in arrays):
            raise ValueError(f"every input must hold as many samples as y ({self.n}), got "
                             f"{[len(a) for a in arrays]}.")
        if int(batch_size) < 1 or int(steps_per_call) < 1:
            raise ValueError(f"batch_size and steps_per_call must be positive, got {batch_size} and {steps_per_call}.")
        self.batch_size = int(batch_size)
        self.steps_per_call = int(steps_per_call)
        self.steps_per_epoch = -(-self.n // self.batch_size)  # training steps per epoch
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._arrays = [keras.ops.convert_to_tensor(a) for a in arrays + [y]]
        self._gather = self._compiled_gather()
        self._new_order()

    @staticmethod
    def _compiled_gather():
        def gather(arrays, order, start, steps, size):
            """``steps`` batches of ``size`` from ``order[start:]``; ``steps=0``: one, not stacked."""
            index = keras.ops.slice(order, [start], [max(steps, 1) * size])
            shape = (steps, size) if steps else (size,)
            return [keras.ops.reshape(keras.ops.take(a, index, axis=0), shape + tuple(a.shape[1:])) for a in arrays]

        if keras.backend.backend() == "jax":
            import jax

            return jax.jit(gather, static_argnums=(3, 4))
        return gather

    def _new_order(self):
        order = self._rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.steps_per_call > 1:  # full batches only: top up with the first samples of the order
            order = np.resize(order, self.steps_per_epoch * self.batch_size)
        self._order = keras.ops.convert_to_tensor(order.astype("int32"))

    def __len__(self):
        return -(-self.steps_per_epoch // self.steps_per_call)

    def __getitem__(self, index):
        if self.steps_per_call == 1:
            start = index * self.batch_size
            batch = self._gather(self._arrays, self._order, start, 0, min(self.batch_size, self.n - start))
        else:
            steps = min(self.steps_per_call, self.steps_per_epoch - index * self.steps_per_call)
            batch = self._gather(self._arrays, self._order, index * self.steps_per_call * self.batch_size, steps,
                                 self.batch_size)
        x, y = batch[:-1], batch[-1]
        return (x[0] if self._single else tuple(x)), y

    def on_epoch_end(self):
        if self.shuffle:
            self._new_order()


def scan_train_steps(model):
    """JAX: let ``model.fit`` run several training steps per call, inside one ``lax.scan``.

    Keras' ``steps_per_execution`` on JAX calls the compiled step once per batch from
    Python; on a GPU fast enough, that call is what the step waits for. After this,
    ``fit`` takes batches stacked ``(N, batch, ...)`` (``DeviceBatches(steps_per_call=N)``)
    and runs the ``N`` steps of each in one compiled call: the same updates, metrics and
    learning-rate schedule (the optimizer counts every step). Returns ``model``.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(f"scan_train_steps needs the JAX backend, not {keras.backend.backend()!r}.")
    import jax

    single_step = model.train_step
    symbolic_build = getattr(model, "_symbolic_build", None)
    if not callable(symbolic_build):
        raise ValueError(f"scan_train_steps needs Trainer._symbolic_build, which Keras {keras.__version__} does not "
                         "have: train with scan_steps=1.")

    def train_step(state, data):
        def body(state, batch):
            logs, state = single_step(state, batch)
            return state, logs

        state, logs = jax.lax.scan(body, state, data)
        return jax.tree_util.tree_map(lambda value: value[-1], logs), state

    def build_from_one_batch(iterator=None, data_batch=None):
        # fit builds the loss and metrics from a first batch: give it one of the stack.
        if data_batch is None and iterator is not None:
            for _, _, data in iterator:
                data_batch = data[0] if isinstance(data, (list, tuple)) else next(data)
                break
        if data_batch is not None:
            data_batch = keras.tree.map_structure(lambda value: value[0], data_batch)
        return symbolic_build(data_batch=data_batch)

    model.train_step = train_step
    model._symbolic_build = build_from_one_batch
    model.train_function = None  # built again, around this step
    return model


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
    from crsky.scoring import load_submitted_model

    saved = Path(saved)
    if saved.is_file():
        return load_submitted_model(saved), f"loaded {saved}"
    if course.grading_run():
        return build_reference_model(num_points=x_train.shape[1]), "an untrained model (nothing is trained while grading)"
    model, _ = train_reference(x_train[:n_maps], y_train[:n_maps], x_val, y_val, epochs=1, verbose=0)
    return model, f"trained a small model for this notebook (no {saved} found)"


def fixed_graph_trainer(model):
    """The compiled ``model`` (inputs ``[points, features]``) made to read its fixed sky graph
    from an input (:func:`edgeconv.with_graph_inputs`), compiled as ``model`` is, with the same
    optimizer: fitting it trains ``model``. Returns ``(trainer, add_graphs)``, or
    ``(model, None)`` when no EdgeConv of ``model`` searches neighbours in one of its inputs
    (or it is not a functional model): then there is no graph to compute once; also when
    the compile options cannot be restored from ``model.get_compile_config()`` (a loss or
    metric Keras cannot deserialize, such as a lambda): then ``model`` trains as it is."""
    from edgeconv import with_graph_inputs

    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile the model before training it: model.optimizer is None.")
    try:
        trainer, add_graphs = with_graph_inputs(model)
    except ValueError:
        return model, None
    # What compile() was given (loss, metrics, jit_compile, ...), through Keras' public config;
    # a loss function of the student's own is found by its name.
    loss = getattr(model, "loss", None)
    custom = {loss.__name__: loss} if callable(loss) and hasattr(loss, "__name__") else {}
    try:
        options = dict(keras.saving.deserialize_keras_object(model.get_compile_config(), custom_objects=custom))
    except Exception:  # noqa: BLE001 (anything Keras cannot serialize back: train the model as it is)
        return model, None
    options["optimizer"] = model.optimizer  # the same instance: one optimizer state for the shared weights
    trainer.compile(**options)
    return trainer, add_graphs


def fit_unless_grading(model, train, val, size, save_as="dgcnn.keras", encode=None, verbose="auto", handed_in=True):
    """Notebook 3's training step: fit the compiled ``model`` on ``train = (x, y)`` maps
    ``(n, 500, 4)`` with integer labels, validating on ``val``, for ``size.epochs`` epochs
    in batches of ``size.batch_size`` (a :class:`crsky.experiment.Size`), then save it to
    ``save_as``. Returns ``(model, history)``. ``encode(y)`` turns the targets into what
    the model's loss takes (default: one-hot of the two classes); ``verbose`` goes to ``fit``
    (2: a line per epoch, for logs); ``handed_in``: whether the saved file is one the student
    submits (the line after training says so).

    While nbgrader runs the notebook (autograde or Validate) nothing is trained: the model
    saved at ``save_as`` is loaded instead when it is there (else the untrained ``model``
    stays), the history is None, and a line says so.

    On a CPU the sky graph of every map is computed once before training instead of at
    every step (:func:`fixed_graph_trainer`, :data:`FAST_OPTIONS`): the same model and the
    same arithmetic, 0.71x the time per step of the reference model on 2 cores
    (docs/performance.md, "Training on CPU"). A model without such a graph trains as it is.
    """
    from pathlib import Path

    from crsky import course
    from crsky.scoring import load_submitted_model

    if course.grading_run():
        saved = Path(save_as)
        if saved.is_file():
            print(f"Autograding or validating: nothing is trained here; using your saved model {saved}.")
            return load_submitted_model(saved), None
        print(f"Autograding or validating: nothing is trained here, and no {saved} was found.")
        return model, None
    (x_train, y_train), (x_val, y_val) = train, val
    train_inputs, val_inputs = model_inputs(x_train), model_inputs(x_val) if len(x_val) else None
    trainer, add_graphs = model, None
    if fast_options().get("fixed_graph"):
        trainer, add_graphs = fixed_graph_trainer(model)
    if add_graphs is not None:
        start = time.perf_counter()
        train_inputs = add_graphs(train_inputs)
        val_inputs = add_graphs(val_inputs) if val_inputs is not None else None
        print(f"the sky graph of every map computed once, before training ({time.perf_counter() - start:.0f} s): "
              f"the same model, trained faster on a CPU")
    encode = encode or (lambda y: keras.utils.to_categorical(y, 2))
    validation = (val_inputs, encode(y_val)) if val_inputs is not None else None
    history = trainer.fit(train_inputs, encode(y_train), validation_data=validation,
                          batch_size=size.batch_size, epochs=size.epochs, verbose=verbose)
    model.save(save_as)
    print(f"saved the trained model to {save_as}" + (": submit it with this notebook" if handed_in else ""))
    return model, history
