"""``demo_reviews``: the seed's movie-review case, made up (deterministically) so examples can run anywhere."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._validation import check_int, check_seed

#: the two models of the seed's last chapter
MODELS = ("llama3.1_8b", "llama3.2_3b")


def demo_reviews(n: int = 1000, seed: int = 0) -> pa.Table:
    """Two fine-tuned LLMs' per-review ratings and ROUGE-L scores (synthetic, seeded).

    Mimics the seed's case: ``rating`` is the true 1-10 score of a movie review,
    ``llama3.1_8b`` / ``llama3.2_3b`` the ratings the two models predicted (RMSE
    near 1.58 and 1.69 at large ``n``, with correlated errors: a review that is hard
    for one is hard for the other), ``rougeL_llama3.1_8b`` / ``rougeL_llama3.2_3b``
    their ROUGE-L against the reference text (means near 0.60 and 0.51), and
    ``movie`` the movie reviewed (about 5 reviews a movie: a cluster).

    Parameters
    ----------
    n : int, default 1000
        Reviews.
    seed : int, default 0

    Returns
    -------
    pyarrow.Table
        Columns ``review_id``, ``movie``, ``rating``, the two models' predicted
        ratings and their ROUGE-L scores.

    Examples
    --------
    >>> from fastevals._compare import demo_reviews
    >>> t = demo_reviews(n=5, seed=1)
    >>> t.column_names
    ['review_id', 'movie', 'rating', 'llama3.1_8b', 'llama3.2_3b', 'rougeL_llama3.1_8b', 'rougeL_llama3.2_3b']
    """
    n = check_int("n", n, low=1)
    rng = np.random.default_rng(check_seed("seed", seed))
    movie = rng.integers(0, max(1, n // 5), n)
    movie_effect = rng.normal(0.0, 0.5, max(1, n // 5))[movie]
    rating = np.clip(np.rint(rng.normal(6.0, 2.2, n) + movie_effect), 1, 10).astype(np.int64)
    hard = rng.normal(0.0, 1.0, n)  # how hard the review is, for both models
    e8 = 1.15 * hard + rng.normal(0.0, 1.2, n)
    e3 = 1.15 * hard + rng.normal(0.15, 1.42, n)
    p8 = np.clip(np.rint(rating + e8), 1, 10).astype(np.int64)
    p3 = np.clip(np.rint(rating + e3), 1, 10).astype(np.int64)
    r8 = np.clip(0.603 - 0.07 * hard + rng.normal(0.0, 0.11, n), 0.0, 1.0)
    r3 = np.clip(0.512 - 0.07 * hard + rng.normal(0.0, 0.13, n), 0.0, 1.0)
    return pa.table({
        "review_id": np.arange(n, dtype=np.int64), "movie": movie.astype(np.int64), "rating": rating,
        MODELS[0]: p8, MODELS[1]: p3, f"rougeL_{MODELS[0]}": r8, f"rougeL_{MODELS[1]}": r3,
    })
