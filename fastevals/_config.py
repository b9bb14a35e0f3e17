"""The one module that owns every numba option.

Nothing else in fastevals writes ``fastmath=``, ``cache=``, ``parallel=`` or
``error_model=``: kernels are decorated with :func:`serial_kernel` or
:func:`parallel_kernel` from here.

Choices, and why
----------------
* ``error_model="numpy"``: division by zero gives inf/NaN like NumPy instead
  of raising inside a kernel (inputs are validated before they get here).
* no ``fastmath``: statistics depend on NaN and inf semantics, and the
  reassociation it allows would make sums depend on the vector width.
* ``cache=True`` on every kernel: a new process answers its first call from
  the on-disk cache in well under a second. Parallel kernels here are plain
  ``prange`` loops over fixed-size chunks without nested parallelism or
  closures, the pattern numba caches reliably.
* Threading: numba's OpenMP layer spins waiting threads by default, which was
  measured to cost ~8 ms per parallel call on a busy 2-core machine.  We set
  ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it) before numba can load
  OpenMP, which brings that to well under a millisecond, and keep OpenMP
  (thread safe, unlike the workqueue layer, which matters under Dask's
  threaded workers).  ``NUMBA_THREADING_LAYER`` is respected when set.
* Small inputs do not pay for threads: public code calls the serial twin of a
  kernel below :data:`PARALLEL_MIN_ROWS` rows.

Numba itself is imported lazily (first kernel use), so ``import fastevals``
compiles nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: below this many rows a batch is processed by the serial kernel.
PARALLEL_MIN_ROWS = 500_000

#: rows per chunk of the chunked kernels. Fixed (not derived from the
#: number of threads) so that every result is the same on 1 or N threads.
CHUNK_ROWS = 1 << 16
#: replicates 0 .. 2**32 - 1 have distinct Poisson-weight streams (the scheme's 32-bit replicate
#: words, fastevals._kernels.poisson); n_resamples is checked against it
MAX_RESAMPLES = 2**32

_OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True}


def serial_kernel(func):
    """Compile ``func`` lazily as a serial, cached numba kernel."""
    import numba

    return numba.njit(**_OPTIONS)(func)


def parallel_kernel(func):
    """Compile ``func`` lazily as a parallel (``prange``) cached numba kernel."""
    import numba

    return numba.njit(parallel=True, **_OPTIONS)(func)


def set_num_threads(n: int) -> None:
    """Set the number of threads used by parallel kernels."""
    import numba

    numba.set_num_threads(int(n))


def get_num_threads() -> int:
    """Number of threads parallel kernels use."""
    import numba

    return numba.get_num_threads()
