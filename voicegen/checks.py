"""The one test behind every numeric argument check (speed, pitch): a real number, not a bool, finite, in range."""

from __future__ import annotations

import math

import numpy as np


def is_number_in(value, bounds: tuple[float, float]) -> bool:
    """True if value is an int or float (numpy scalars included, bools not) that is finite and within bounds."""
    lo, hi = bounds
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.floating, np.integer))
            and math.isfinite(value) and lo <= value <= hi)
