import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    import numpy as np

    np.random.seed(0)
    try:
        import keras
    except ImportError:
        return
    keras.utils.set_random_seed(0)
