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


# The longest modules first (measured: docs/performance.md), in the order that splits them
# evenly between two workers: scripts/test.sh runs the modules on pytest-xdist workers
# (--dist loadfile), which are dealt the first modules in turn, then take the rest as they
# finish. A serial run keeps the same order.
LONGEST_FIRST = ("test_student_path.py", "test_grading.py", "test_routes.py", "test_notebooks.py",
                 "test_trusted_scoring.py", "test_jupyterhub.py", "test_main.py", "test_corpus.py",
                 "test_training_options.py", "test_edgeconv.py", "test_selfcheck.py", "test_repair.py",
                 "test_exchange.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order
