"""CUDA twins of the heavy CPU kernels (numba-cuda), imported lazily.

Nothing in this package's ``__init__``, :mod:`.config` or :mod:`.backend`
imports ``numba.cuda``: ``import fastevals`` and :func:`.backend.resolve_backend`
on the CPU path stay free of it.  The kernel modules (:mod:`.bootstrap`,
:mod:`.patefield`, :mod:`.calibration`, :mod:`.bandits`) import it when they
are imported themselves, which public code does only after choosing
``backend="cuda"``.

Every twin takes host NumPy arrays and returns host arrays, with the inputs,
outputs and counter-based random numbers of its CPU kernel (see docs/cuda.md):

=====================================  ==============================================
CUDA twin                              CPU kernel it replaces
=====================================  ==============================================
``bootstrap.accumulate_rows``          ``_kernels.bootstrap.accumulate_rows_{serial,parallel}``
``bootstrap.sorted_poisson``           ``_kernels.bootstrap.sorted_poisson``
``patefield.monte_carlo_g_hits``       ``_kernels.patefield.monte_carlo_g_hits``
``calibration.fold_bins``              ``_kernels.calibration.fold_bins_{serial,parallel}``
``bandits.simulate_runs``              ``_kernels.bandits.simulate_runs`` (UCB1, Bernoulli)
=====================================  ==============================================
"""
