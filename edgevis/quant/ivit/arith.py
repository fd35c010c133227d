"""Integer arithmetic shared by the integer-only kernels: dyadic numbers and their reference.

Every function here works on ``np.int64`` arrays with floor semantics (``>>`` and
``//`` of numpy floor toward minus infinity); they are the *integer reference*.
The ONNX lowering of the same operations lives in :mod:`.lower`, written with
ONNX's own semantics (integer ``Div`` truncates, ``BitShift`` is unsigned-only),
and tests demand that both agree bit for bit.

A real number ``r`` becomes a dyadic number ``m * 2**-k`` once, at conversion
time (:func:`dyadic`); at run time multiplying by ``r`` is ``(x * m + 2**(k-1)) >> k``
(round half up) in int64. The multiplier gets as many bits as the input bound
leaves free below 2**62, so no product can overflow.
"""

from __future__ import annotations

import math

import numpy as np

INT64_SAFE = 1 << 62  # every intermediate stays below this in magnitude (checked at conversion)
I64 = np.int64


class RangeError(ValueError):
    """An intermediate would leave the int64 range: a conversion bug, never a silent wrap."""


def bits(bound: int | float) -> int:
    """Bits needed for the magnitude ``bound`` (``bits(255) == 8``)."""
    b = int(math.ceil(float(bound)))
    return max(b, 1).bit_length()


def check_bound(bound: float, what: str) -> None:
    if not bound < INT64_SAFE:
        raise RangeError(f"{what}: magnitude bound {bound:.3g} exceeds 2**62")


def dyadic(ratio: np.ndarray | float, in_bound: float, max_k: int = 62) -> tuple[np.ndarray, np.ndarray]:
    """``(m, k)`` with ``m / 2**k ~= ratio`` for every element; ``|x * m| < 2**62`` for ``|x| <= in_bound``.

    ``m`` gets at most 31 bits (more buys no precision an int16/int32 tensor can show)
    and at most what the bound leaves free; ``k`` is at least 1 so the rounding term
    ``2**(k-1)`` is an integer.
    """
    r = np.asarray(ratio, dtype=np.float64)
    if np.any(r <= 0) or not np.all(np.isfinite(r)):
        raise RangeError(f"dyadic ratio must be positive and finite (got {r.min():.3g}..{r.max():.3g})")
    m_bits = min(31, 61 - bits(in_bound))
    if m_bits < 8:
        raise RangeError(f"input bound 2**{bits(in_bound)} leaves only {m_bits} bits for a multiplier")
    # k so that m = round(r * 2**k) lands in [2**(m_bits-1), 2**m_bits)
    e = np.floor(np.log2(r)).astype(np.int64)  # r in [2**e, 2**(e+1))
    k = np.clip(m_bits - 1 - e, 1, max_k)
    m = np.round(r * np.exp2(k.astype(np.float64))).astype(np.int64)
    m = np.maximum(m, 1)
    if np.any(m >= (1 << m_bits) + 1):  # a ratio too large for any k >= 1: bound says it cannot fit
        raise RangeError(f"ratio {r.max():.3g} too large for an input bound of {in_bound:.3g}")
    return m, k


def requant(x: np.ndarray, m: np.ndarray, k: np.ndarray, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """``round(x * m / 2**k)`` (half up), then clipped to ``[lo, hi]`` when given."""
    y = (x * m + (np.int64(1) << (k - 1))) >> k
    if lo is not None or hi is not None:
        y = np.clip(y, lo, hi)
    return y.astype(I64)


def isqrt(n: np.ndarray, steps: int = 31) -> np.ndarray:
    """Exact ``floor(sqrt(n))`` for every ``0 <= n < 4**steps`` (digit-by-digit, no Newton start to get wrong).

    One result bit per step: the candidate ``r + b`` is accepted when the remainder
    still covers it. ``steps=31`` covers every non-negative int64 below 2**62.
    """
    x = np.asarray(n, dtype=I64).copy()
    if np.any(x < 0) or np.any(x >= (np.int64(1) << (2 * steps))):
        raise RangeError(f"isqrt with {steps} steps takes 0 <= n < 4**{steps}")
    r = np.zeros_like(x)
    b = np.int64(1) << (2 * steps - 2)
    for _ in range(steps):
        t = r + b
        ge = x >= t
        x = np.where(ge, x - t, x)
        r = np.where(ge, (r >> 1) + b, r >> 1)
        b = b >> 2
    return r


def round_div(a: np.ndarray, d: np.ndarray | int) -> np.ndarray:
    """``round(a / d)`` half up, ``d > 0``: ``floor((2a + d) / 2d)``."""
    d = np.asarray(d, dtype=I64)
    return (2 * a + d) // (2 * d)
