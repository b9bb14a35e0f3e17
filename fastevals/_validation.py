"""Shared argument checks: every error in fastevals reads the same way and
names the argument or column at fault.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np


def check_choice(name: str, value, choices: Sequence, *, allow_none: bool = False):
    """Return ``value`` lower-cased if it is one of ``choices``."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        low = value.lower()
        if low in choices:
            return low
    shown = ", ".join(repr(c) for c in choices)
    extra = " or None" if allow_none else ""
    raise ValueError(f"`{name}` must be one of {shown}{extra}; got {value!r}")


def check_int(name: str, value, *, low: int | None = None, high: int | None = None, allow_none=False):
    """Return ``value`` as an int within ``[low, high]``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be >= {low}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}; got {value}")
    return value


def check_probability(name: str, value, *, open_interval: bool = True) -> float:
    """Return ``value`` as a float in (0, 1) (or [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in (0, 1); got {type(value).__name__} {value!r}")
    value = float(value)
    ok = (0.0 < value < 1.0) if open_interval else (0.0 <= value <= 1.0)
    if not ok or math.isnan(value):
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"`{name}` must be in {bounds}; got {value!r}")
    return value


def check_finite_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}")
    return value


def check_seed(name: str, seed) -> int:
    """Turn ``seed`` (None, int, or numpy Generator) into a 64-bit integer key."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1, dtype=np.int64))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`{name}` must be None, an integer or a numpy Generator; got {seed!r}")
    if seed < 0:
        raise ValueError(f"`{name}` must be non-negative; got {seed}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def as_column_list(name: str, value, *, allow_none: bool = True) -> list[str]:
    """Normalize a column argument (None, a name, or a list of names)."""
    if value is None:
        if allow_none:
            return []
        raise ValueError(f"`{name}` is required: give a column name")
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        if len(set(value)) != len(value):
            raise ValueError(f"`{name}` names a column twice: {list(value)!r}")
        return list(value)
    raise TypeError(f"`{name}` must be a column name or a list of column names; got {value!r}")


def check_nulls(nulls) -> str:
    return check_choice("nulls", nulls, ("raise", "drop"))
