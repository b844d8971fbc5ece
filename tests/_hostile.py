"""Shared by the ``test_hostile_*`` files: a small problem and the test every table runs."""

from __future__ import annotations

import numpy as np
import pytest

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


def clear_error_test(cases: dict):
    """A test over ``cases`` (``{id: (call, match)}``): each call raises a ``ValueError`` whose
    message matches ``match``, the argument and the problem named."""

    @pytest.mark.parametrize("case", list(cases))
    def test_hostile_input_is_a_clear_error(case):
        call, match = cases[case]
        with pytest.raises(ValueError, match=match):
            call()

    return test_hostile_input_is_a_clear_error
