"""Type aliases of the public API, written once so that every analysis's signature reads the same.

They are for type checkers and readers; nothing here is checked at run time (the analyses
validate their arguments themselves, :mod:`fastevals._validation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow.compute as pc

#: Any input the input layer reads (:func:`fastevals._source.open_source`): a pyarrow Table,
#: RecordBatch or RecordBatchReader, a ``pyarrow.dataset.Dataset``, a Parquet file, folder, glob
#: or list of paths, a pandas or polars DataFrame (or any ``__arrow_c_stream__`` object), a dict
#: of NumPy arrays, or a Dask DataFrame. ``Any``: pandas, polars and Dask are optional imports.
Data: TypeAlias = Any

#: One column name, or several.
Columns: TypeAlias = str | Sequence[str]

#: A row filter pushed into the scan (``pc.field("country") == "DE"``), or None.
Filter: TypeAlias = pc.Expression | None

#: None (a documented default or fresh entropy, see each analysis), a non-negative integer, or a
#: NumPy Generator (one integer is drawn from it).
Seed: TypeAlias = int | np.random.Generator | None

__all__ = ["Columns", "Data", "Filter", "Seed"]
