"""The seed of the learning-outcome (acceptance) tests.

Those tests assert margins that must hold for any seed and on any machine, not one run's numbers. To check that,
run them under other seeds and thread counts, e.g.::

    MMXMODAL_TEST_SEED=2 OMP_NUM_THREADS=2 .venv/bin/python -m pytest -m slow tests/test_models

The seed changes both the generated data and the training randomness (``randomness.seed``).
"""
import os


def acceptance_seed() -> int:
    """``MMXMODAL_TEST_SEED`` (default 0)."""
    value = os.environ.get('MMXMODAL_TEST_SEED', '0')
    try:
        return int(value)
    except ValueError:
        raise ValueError(f'MMXMODAL_TEST_SEED must be an integer, got {value!r}') from None
