"""Semi-dynamic probability tables: a fixed family of quantised CDFs, chosen per symbol by an integer id.

Tables are built once, when a model is made (``tools/build_default_model.py``), and shipped as
integers inside the weights file: decoders never recompute them from floats, so no libm difference
between machines can change a probability.  Every frequency is >= 1, so any residual stays codable.
"""
from __future__ import annotations

import numpy as np

from .rans_ref import PREC_TOTAL


def quantize_counts(counts: np.ndarray, total: int = PREC_TOTAL) -> np.ndarray:
    """Integer frequencies summing to ``total``, each >= 1, proportional to ``counts`` (any non-negative
    numbers).  Deterministic: the rounding remainder goes to the largest entries, ties by index."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    if n == 0 or n > total:
        raise ValueError("need 1..total symbols")
    s = counts.sum()
    if s <= 0:
        counts = np.ones(n)
        s = float(n)
    freq = 1 + np.floor(counts * ((total - n) / s)).astype(np.int64)
    rest = total - int(freq.sum())
    order = np.lexsort((np.arange(n), -counts))
    i = 0
    while rest > 0:
        freq[order[i % n]] += 1
        rest -= 1
        i += 1
    while rest < 0:  # only reachable through float rounding; take from the largest, keeping >= 1
        j = order[i % n]
        if freq[j] > 1:
            freq[j] -= 1
            rest += 1
        i += 1
    return freq.astype(np.uint32)


def freqs_to_cdf(freq: np.ndarray) -> np.ndarray:
    """(..., A) frequencies -> (..., A + 1) uint32 cumulative table starting at 0."""
    freq = np.asarray(freq, dtype=np.uint32)
    cdf = np.zeros(freq.shape[:-1] + (freq.shape[-1] + 1,), dtype=np.uint32)
    np.cumsum(freq, axis=-1, out=cdf[..., 1:])
    return cdf


def laplace_family(n_scales: int, scale_min: float, scale_max: float) -> np.ndarray:
    """Frequencies (n_scales, 256) of discretised Laplace distributions of the residual symbol
    ``s = r + 128``, r in [-128, 127], with scales geometric between ``scale_min`` and ``scale_max``."""
    r = np.arange(-128, 128, dtype=np.float64)
    out = []
    for b in np.geomspace(scale_min, scale_max, n_scales):
        def cdf(z):
            return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0) / b), 1 - 0.5 * np.exp(-np.maximum(z, 0) / b))
        p = cdf(r + 0.5) - cdf(r - 0.5)
        out.append(quantize_counts(p / p.sum()))
    return np.stack(out)


def code_length_bits(cdf: np.ndarray) -> np.ndarray:
    """(T, A) float32 cost in bits of each symbol under each table (for encoder decisions only)."""
    freq = np.diff(cdf.astype(np.int64), axis=-1)
    with np.errstate(divide="ignore"):
        return (np.log2(PREC_TOTAL) - np.log2(freq)).astype(np.float32)
