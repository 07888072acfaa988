"""Base qualities that mean what they say: a head's posterior qualities mapped to the ones it
reports, by two maps fitted on validation chunks after training (:func:`fitted`, for each way
of decoding: :meth:`~nanoseq.basecaller.head.Head.with_fitted_qualities`):

1. a table over the posterior quality, monotone as isotonic regression makes it
   (:func:`fitted_table`, :func:`pooled_qualities`);
2. a logistic regression of a base's error on its table quality and on its context, the quality
   of the bases around it (:func:`context_qualities`) (:func:`fitted_context`): a posterior is
   worth more in a clean stretch of signal than in a noisy one (phred's trace parameters, too,
   look at the peaks around a base). Fitted on the validation chunks of deepnano-blitz's w96
   network and scored on other chunks, it lowers the log loss of the qualities in every split
   tried (half the chunks against the other half, one region against another).
"""

from __future__ import annotations

import numpy as np

MAX_QSCORE = 50
MIN_BASES = 100  # bases a posterior quality needs to count in the table's fit
MIN_ERRORS = 50  # wrong bases (and as many right ones) the context's fit needs
CONTEXT_BASES = 100  # a base's context: the bases this far either side of it, in its read


def qscores(q) -> np.ndarray:
    """Phred values ``q`` rounded into qualities a read can carry: uint8, 1 to
    :data:`MAX_QSCORE`."""
    return np.clip(np.rint(q), 1, MAX_QSCORE).astype(np.uint8)


def reported(raw: np.ndarray, table=None, context=None) -> np.ndarray:
    """Posterior qualities ``raw`` (uint8, one read's or chunk's, in order) as reported: through
    ``table`` (indexed by the posterior quality), then the logistic regression whose weights
    ``context`` are (bias, table quality / 10, context quality / 10); either may be None."""
    if table is None and context is None:
        return raw
    quality = np.asarray(raw, dtype=np.float64)
    if table is not None:
        quality = np.asarray(table, dtype=np.float64)[raw]
    if context is not None:
        bias, weight, context_weight = context
        z = bias + weight * quality / 10 + context_weight * context_qualities(raw) / 10
        quality = 10 * np.logaddexp(0.0, -z) / np.log(10)  # -10 log10 sigmoid(z)
    return qscores(quality)


def context_qualities(raw: np.ndarray) -> np.ndarray:
    """For each base, -10 log10 of the mean posterior error probability of the bases within
    :data:`CONTEXT_BASES` of it (fewer at the ends)."""
    n = len(raw)
    total = np.concatenate([[0.0], np.cumsum(10 ** (-np.asarray(raw, dtype=np.float64) / 10))])
    at = np.arange(n)
    start, end = np.maximum(at - CONTEXT_BASES, 0), np.minimum(at + CONTEXT_BASES + 1, n)
    return -10 * np.log10((total[end] - total[start]) / (end - start))


def fitted(raw: list[np.ndarray], alignments: list) -> dict | None:
    """The ``table`` and ``context`` under which calls whose bases have posterior qualities
    ``raw`` (each array a chunk) and are aligned to their truths by ``alignments``
    (:func:`~nanoseq.metrics.aligned`: mismatched and inserted bases are wrong) are as often
    wrong as their qualities say; None when no quality is seen often enough to fit."""
    wrong = [~alignment.read_ok for alignment in alignments]
    table = fitted_table(raw, wrong)
    if table is None:
        return None
    return {"table": table, "context": fitted_context(raw, wrong, table)}


def fitted_table(raw: list[np.ndarray], wrong: list[np.ndarray]) -> list[int] | None:
    """The table under which bases of posterior qualities ``raw`` are as often ``wrong`` as
    their qualities say: per posterior quality, its errors, made monotone
    (:func:`pooled_qualities`); qualities seen fewer than :data:`MIN_BASES` times take their
    neighbours'. None when no quality is seen that often."""
    raw_all = np.concatenate(raw).astype(np.int64)
    bases = np.bincount(raw_all, minlength=MAX_QSCORE + 1)
    errors = np.bincount(raw_all, weights=np.concatenate(wrong), minlength=MAX_QSCORE + 1)
    seen = np.flatnonzero(bases >= MIN_BASES)
    if not len(seen):
        return None
    fitted = pooled_qualities(bases[seen], errors[seen])
    table = np.interp(np.arange(MAX_QSCORE + 1), seen, fitted)
    return qscores(table).tolist()


def fitted_context(raw: list[np.ndarray], wrong: list[np.ndarray], table) -> list[float] | None:
    """The weights of :func:`reported`'s logistic regression, fitted by maximum likelihood to
    the bases of posterior qualities ``raw`` (each array a chunk) and whether they are
    ``wrong``; None with too few errors to fit, or where a higher table quality would mean
    more errors (the table alone is then kept)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    y = np.concatenate(wrong).astype(np.float64)
    if min(y.sum(), len(y) - y.sum()) < MIN_ERRORS:
        return None
    features = np.column_stack(
        [
            np.ones(len(y)),
            np.asarray(table, dtype=np.float64)[np.concatenate(raw)] / 10,
            np.concatenate([context_qualities(r) for r in raw]) / 10,
        ]
    )

    def loss(w):  # the negative log-likelihood, and its gradient
        z = features @ w
        return np.sum(np.logaddexp(0.0, z) - y * z), features.T @ (expit(z) - y)

    weights = minimize(loss, np.zeros(3), jac=True, method="BFGS").x
    return weights.tolist() if weights[1] < 0 else None


def pooled_qualities(bases: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """The Q that ``errors`` of ``bases`` measure in each of a row of quality bins, made
    non-decreasing as isotonic regression of the errors does: neighbouring bins whose error
    rate does not fall are pooled (their bases and errors summed), each pool measuring
    -10 log10((errors + 0.5) / (bases + 1)). Pooling counts, not each bin's Q, keeps sparse
    bins without errors (whose smoothed Q is low) from dragging well-measured ones down."""
    pools: list[list[float]] = []  # [errors, bases, bins]
    for n, e in zip(bases, errors, strict=True):
        pools.append([float(e), float(n), 1])
        while len(pools) > 1 and pools[-2][0] * pools[-1][1] <= pools[-1][0] * pools[-2][1]:
            e2, n2, k2 = pools.pop()
            pools[-1] = [pools[-1][0] + e2, pools[-1][1] + n2, pools[-1][2] + k2]
    measured = [np.full(int(k), -10 * np.log10((e + 0.5) / (n + 1))) for e, n, k in pools]
    return np.maximum.accumulate(np.concatenate(measured))  # the smoothing can dip a pool
