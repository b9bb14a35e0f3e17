"""Choosing the backend of an analysis: ``backend="auto" | "cpu" | "cuda"``.

:func:`resolve_backend` is the one place that decides; public functions call
it once, in their argument checks, and record the answer in their result.
It imports ``numba.cuda`` only when the answer could be ``"cuda"``: never for
``"cpu"``, and for ``"auto"`` only when the work is above :data:`GPU_MIN_WORK`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .._validation import check_choice

#: the smallest work (rows x replicates for the bootstrap, tables x cells for the
#: Monte Carlo G-test, rows for calibration, runs x steps for bandits) for which
#: ``backend="auto"`` picks a GPU.  Below it the CPU engine answers in well under a
#: second, while a GPU call pays the transfer of the data and, on its first call in a
#: process, about a second of kernel compilation.  An estimate, not a measurement:
#: no figure from a real GPU has been recorded yet (docs/cuda.md).
GPU_MIN_WORK = 1_000_000_000

BACKENDS = ("auto", "cpu", "cuda")

_INSTALL_HINT = "install numba-cuda (pip install 'fastevals[cuda]')"


def _simulator_requested() -> bool:
    # numba.cuda reads the flag once, at its import: once imported, its mode is what counts
    jit = sys.modules.get("fastevals._cuda._jit")
    if jit is not None:
        return bool(jit.SIMULATOR)
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _numba_cuda_installed() -> bool:
    return importlib.util.find_spec("numba_cuda") is not None


def cuda_status() -> tuple[bool, bool, str]:
    """``(usable, real_gpu, why)``: whether the CUDA twins can run here, whether on a real
    GPU (not the simulator), and a sentence saying why not.  Never raises."""
    if not _numba_cuda_installed():
        return False, False, f"numba-cuda is not installed; {_INSTALL_HINT}"
    try:
        from . import _jit

        cuda = _jit.cuda
        if _jit.SIMULATOR:
            return True, False, "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) is enabled"
        if cuda.is_available():
            return True, True, ""
        err = " ".join(str(cuda.cuda_error() or "numba.cuda.is_available() is False").split())
        return False, False, f"no usable CUDA GPU was found ({err})"
    except Exception as exc:  # a broken driver or toolkit must not crash the caller
        msg = " ".join(str(exc).split())
        return False, False, f"numba-cuda could not be initialised ({type(exc).__name__}: {msg})"


def resolve_backend(backend: str, work: int | float) -> str:
    """``"cpu"`` or ``"cuda"``: the backend an analysis of size ``work`` runs on.

    ``backend="cpu"`` is the CPU engine; ``"cuda"`` the CUDA twins, and an error
    (``RuntimeError``, saying why) when numba-cuda is missing or no GPU is usable
    (the CUDA simulator counts as usable, so tests can run it); ``"auto"`` picks
    ``"cuda"`` only on a real GPU and when ``work`` is at least :data:`GPU_MIN_WORK`.

    Example
    -------
    >>> resolve_backend("auto", 1000)
    'cpu'
    """
    backend = check_choice("backend", backend, BACKENDS)
    if backend == "cpu":
        return "cpu"
    if backend == "auto":
        if work < GPU_MIN_WORK or _simulator_requested():
            return "cpu"
        usable, real, _ = cuda_status()
        return "cuda" if usable and real else "cpu"
    usable, _, why = cuda_status()
    if not usable:
        raise RuntimeError(f"backend='cuda' cannot run here: {why}. Use backend='cpu' or 'auto'.")
    return "cuda"
