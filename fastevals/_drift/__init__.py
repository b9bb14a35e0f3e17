"""Distribution shift: reference profiles, drift tests and distances, adversarial validation.

``profile`` scans a reference once into a mergeable, serializable :class:`Profile`;
``drift`` compares current data with a reference (raw: exact KS / Wasserstein; or its
profile); ``adversarial_validation`` trains a classifier to tell training rows from test rows.
"""

from .adversarial import AdversarialValidationResult, adversarial_validation
from .api import drift, profile
from .result import DriftResult
from .state import Profile

__all__ = ["profile", "Profile", "drift", "DriftResult", "adversarial_validation", "AdversarialValidationResult"]


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the drift kernels on tiny inputs.

    Parameters
    ----------
    parallel : bool
        Also the parallel twin of the binning kernel.
    """
    from .._kernels import drift as kd

    kd.warmup(parallel)
