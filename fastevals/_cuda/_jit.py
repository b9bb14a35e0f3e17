"""The one module of the CUDA twins that imports ``numba.cuda`` and owns its options.

* numba-cuda (the NVIDIA package, the ``cuda`` extra) provides ``numba.cuda``
  when installed; ``from numba import cuda`` is the import its documentation
  gives.  The deprecated target built into numba is not supported.
* numba-cuda 0.30 still calls ``np.row_stack``, which NumPy 2.5 removed: every
  kernel compile then fails.  ``np.row_stack = np.vstack`` restores it (same
  function) before the first kernel compiles.
* Kernels compile lazily (no signatures at import) and without ``fastmath``:
  statistics depend on IEEE semantics.
* Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python
  on NumPy scalars, where the wrapping uint64 multiplications of the hashes
  (intended: arithmetic mod 2**64, as on the device) raise NumPy's overflow
  warning; :func:`launching` silences exactly that warning around a launch.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

if not hasattr(np, "row_stack"):  # numba-cuda 0.30 on NumPy >= 2.5
    setattr(np, "row_stack", np.vstack)  # noqa: B010  (an attribute NumPy no longer has)

# numba.cuda decides between the device and the simulator once, at its import, from
# numba.core.config (numba-cuda uses numba's config module when numba is installed), which
# read the environment when numba was first imported: refresh it so that
# NUMBA_ENABLE_CUDASIM set after ``import numba`` (but before this import) is honoured.
import numba.core.config  # noqa: E402

numba.core.config.reload_config()

from numba import cuda  # noqa: E402  (numba-cuda's numba.cuda, after the shim)


def _simulator_enabled() -> bool:
    # the simulator's is_available() is a plain function of simulator_init
    return getattr(cuda.is_available, "__module__", "").endswith("simulator_init")


#: True when numba.cuda was imported in simulator mode
SIMULATOR = _simulator_enabled()


def kernel(func):
    """A lazily compiled CUDA kernel."""
    return cuda.jit(func)


def device(func):
    """A lazily compiled CUDA device function."""
    return cuda.jit(device=True)(func)


@contextlib.contextmanager
def launching():
    """Context for kernel launches: under the simulator, ignore NumPy's integer overflow
    warnings (uint64 hash arithmetic wraps by design); on a GPU, nothing."""
    if not SIMULATOR:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*overflow encountered in scalar", category=RuntimeWarning)
        with np.errstate(over="ignore"):
            yield
