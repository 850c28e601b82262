"""The benchmark's naive layer computes what the real one computes (so its ratio is fair)."""

import numpy as np
import pytest

pytestmark = pytest.mark.keras


def test_naive_reference_model_matches_the_real_one():
    import keras
    from bench.naive_edgeconv import build_naive_reference_model
    from crsky.models import build_reference_model, model_inputs
    from crsky.simulate import simulate

    real, naive = build_reference_model(), build_naive_reference_model()
    naive.set_weights(real.get_weights())
    inputs = model_inputs(simulate("textbook", 4, seed=1)["data"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(naive(inputs, training=False)),
                               keras.ops.convert_to_numpy(real(inputs, training=False)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["select", "argmin", "chunked", "argsort"])
def test_knn_methods_in_the_benchmark_pick_the_same_neighbours(name):
    """bench/knn_methods.py compares speeds: only fair if every method selects the same graph."""
    import keras
    from bench.knn_methods import METHODS

    rng = np.random.default_rng(2)
    sky = rng.normal(size=(2, 120, 3))
    sky /= np.linalg.norm(sky, axis=-1, keepdims=True)
    features = np.maximum(rng.normal(size=(2, 120, 5)), 0)
    features[:, :30] = 0  # thirty tied points, as after a ReLU
    for x in (sky.astype("float32"), features.astype("float32")):
        def neighbour_distances(method):
            indices = keras.ops.convert_to_numpy(METHODS[method](x, 8))
            neighbours = np.take_along_axis(x[:, :, None, :], indices[..., None], axis=1)
            return np.linalg.norm(neighbours - x[:, :, None, :], axis=-1)

        # The same distances (among tied points any may be chosen: PyTorch's topk does
        # not order ties), and the same neighbour sets where nothing is tied.
        np.testing.assert_allclose(neighbour_distances(name), neighbour_distances("top_k"), atol=1e-6)
        if x.shape[-1] == 3:
            expected = np.sort(keras.ops.convert_to_numpy(METHODS["top_k"](x, 8)), -1)
            np.testing.assert_array_equal(np.sort(keras.ops.convert_to_numpy(METHODS[name](x, 8)), -1), expected)


def test_recipe_grid_reads_recipes():
    from bench.recipe_grid import parse_recipe

    assert parse_recipe("b16 e3 lr3e-3 w200 m0.99") == {"batch_size": 16, "epochs": 3, "learning_rate": 3e-3,
                                                         "warmup_steps": 200, "bn_momentum": 0.99}
    with pytest.raises(ValueError, match="lacks"):
        parse_recipe("b16 e3")
    with pytest.raises(ValueError, match="unknown"):
        parse_recipe("b16 e3 lr1e-3 x2")


def test_training_recipes_compare_the_cpu_size_with_the_recipe_it_replaced():
    from bench.training_recipes import RECIPES
    from crsky.experiment import SIZES
    from crsky.training import FAST_OPTIONS

    cpu = SIZES["cpu"]
    new = {"batch_size": cpu.batch_size, "epochs": cpu.epochs, "learning_rate": cpu.learning_rate}
    assert RECIPES["old"] == {"batch_size": 32, "epochs": 5, "learning_rate": 3e-3}
    assert RECIPES["new"] == {**new, "fixed_graph": True}  # as notebook 3 trains it
    assert RECIPES["new+"] == {**new, **FAST_OPTIONS}  # as crsky.main trains it


def test_step_clock_times_the_steps_after_an_epochs_first():
    """The levers' clock leaves out fit's set-up and the first step (compilation)."""
    import keras
    from bench.training_recipes import StepClock

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse", optimizer="sgd")
    clock = StepClock()
    model.fit(np.zeros((40, 3)), np.zeros((40, 2)), batch_size=8, epochs=1, verbose=0, callbacks=[clock])
    assert clock.steps == 4  # steps 2 to 5 of five
    assert clock.wall > 0 and clock.cpu >= 0


def test_the_seed_benchmark_pairs_each_map_over_the_seeds():
    from bench.seeds import summarise

    baseline = np.array([True, True, False, False])
    by_seed = np.array([[True, True, True, False], [True, False, True, True]])
    summary = summarise(by_seed, baseline)
    # mean correctness per map (1, 0.5, 1, 0.5) against (1, 1, 0, 0): +0.25, paired over the maps
    assert summary["difference"] == pytest.approx(0.25)
    assert summary["se"] == pytest.approx(np.std([0, -0.5, 1, 0.5], ddof=1) / 2)
    assert [seed["difference"] for seed in summary["per_seed"]] == pytest.approx([0.25, 0.25])
    assert summary["seed_sd"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\(seeds, 4\)"):
        summarise(by_seed[:, :3], baseline)
