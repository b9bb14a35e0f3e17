"""A realistic synthetic experiment log for the demo and the docs.

An online test of a new ranking model (``treatment``) against the current
one (``control``): one row per session with the user, the country and device,
whether the session converted and the revenue it brought. The new model lifts
conversion by about 4% (relative) on mobile and leaves desktop alone;
revenue per converted session is lognormal.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "ES", "IT", "CA"]
DEVICES = ["ios", "android", "desktop"]


def make_experiment(n_rows: int = 3_000_000, *, seed: int = 2026) -> pa.Table:
    """The demo experiment log as an Arrow table (columns: user_id, variant, country, device,
    converted, revenue).
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, n_rows // 3)
    user = rng.integers(0, n_users, n_rows)
    # assignment is by user, as in a real experiment
    variant_code = (user * 2654435761 % 2**32 >> 16) & 1
    country = rng.choice(len(COUNTRIES), n_rows, p=[0.3, 0.1, 0.08, 0.1, 0.07, 0.08, 0.12, 0.05, 0.05, 0.05])
    device = rng.choice(len(DEVICES), n_rows, p=[0.35, 0.4, 0.25])
    base = 0.05 + 0.01 * (country % 3) + np.where(device == 2, 0.015, 0.0)
    lift = np.where((variant_code == 1) & (device != 2), 1.04, 1.0)
    converted = rng.random(n_rows) < base * lift
    revenue = np.where(converted, rng.lognormal(3.0, 1.0, n_rows), 0.0)
    return pa.table({
        "user_id": pa.array(user, type=pa.int64()),
        "variant": pa.DictionaryArray.from_arrays(variant_code.astype(np.int32),
                                                  pa.array(["control", "treatment"])),
        "country": pa.DictionaryArray.from_arrays(country.astype(np.int32), pa.array(COUNTRIES)),
        "device": pa.DictionaryArray.from_arrays(device.astype(np.int32), pa.array(DEVICES)),
        "converted": converted.astype(np.int8),
        "revenue": revenue,
    })


def write_experiment(path: str, n_rows: int = 3_000_000, *, seed: int = 2026,
                     row_group_size: int = 500_000) -> str:
    """Write the demo log to ``path`` (a Parquet file), atomically: a failed write leaves no file."""
    table = make_experiment(n_rows, seed=seed)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        pq.write_table(table, tmp, row_group_size=row_group_size)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
