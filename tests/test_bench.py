"""The benchmark's naive layer computes what the real one computes (so its ratio is fair)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

pytestmark = pytest.mark.keras


def test_naive_reference_model_matches_the_real_one():
    from naive_edgeconv import build_naive_reference_model

    from crsky.dataset import model_inputs
    from crsky.models import build_reference_model
    from crsky.simulate import simulate

    real, naive = build_reference_model(), build_naive_reference_model()
    naive.set_weights(real.get_weights())
    inputs = model_inputs(simulate("textbook", 4, seed=1)["data"])
    np.testing.assert_allclose(np.asarray(naive(inputs, training=False)), np.asarray(real(inputs, training=False)),
                               rtol=1e-4, atol=1e-5)
