"""Jensen-Shannon divergence between character n-gram distributions, as ``gan_language.py`` logs.

The WGAN-GP paper's language model (Gulrajani et al. 2017, sec. 5 and appendix) is monitored by
``language_helpers.NgramLanguageModel.js_with`` of its reference code: the n-grams of a set of
sequences are every window of n consecutive characters *within* a sequence (``L - n + 1`` per
sequence of length ``L``; none across sequences), ``p`` is their empirical distribution, and

    JS(p, q) = 1/2 sum_g p(g) log2(p(g) / m(g)) + 1/2 sum_g q(g) log2(q(g) / m(g)),
    m = (p + q) / 2,

in **bits (log base 2)**, so ``0 <= JS <= 1``; terms with ``p(g) = 0`` (resp. ``q(g) = 0``) are
0. Generated sequences are argmax-decoded first (the symbol of largest softmax probability at
each position). The reference code compares 640 samples with the whole corpus; here the samples
are compared with a held-out set of the same size, and the **real-vs-real baseline** is the
same statistic between two disjoint held-out sets of that size: the value a perfect model
would get from sampling noise alone.

For a corpus with a known n-gram law (the embedded Markov chain, :mod:`wgan.data.text`),
:func:`js_to_law` gives the exact JS of a sample's n-gram distribution to the true one.

Sequences are vocabulary indices ``(N, L)`` (int64); an n-gram is coded as the integer
``sum_k x_{t+k} V**(n-1-k)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from wgan.errors import WganError

__all__ = [
    "MAX_N",
    "js_from_probs",
    "js_strings",
    "js_to_law",
    "ngram_codes",
    "ngram_js",
    "ngram_metrics",
]

MAX_N = 4


def ngram_codes(seqs: Tensor, n: int, vocab: int) -> Tensor:
    """Every within-sequence n-gram of ``seqs`` ``(N, L)`` as one int64 code, ``(N * (L-n+1),)``."""
    if seqs.ndim != 2:
        raise WganError(f"n-grams need sequences (N, L), got shape {tuple(seqs.shape)}")
    if not 1 <= n <= seqs.shape[1]:
        raise WganError(f"n = {n} must be in 1 .. the sequence length {seqs.shape[1]}")
    if vocab**n >= 2**62:
        raise WganError(f"{vocab}**{n} n-gram codes do not fit in 64 bits")
    seqs = seqs.long()
    width = seqs.shape[1] - n + 1
    code = torch.zeros(seqs.shape[0], width, dtype=torch.long, device=seqs.device)
    for k in range(n):
        code = code * vocab + seqs[:, k : k + width]  # (N, L - n + 1)
    return code.reshape(-1)


def js_from_probs(p: Tensor, q: Tensor) -> float:
    """JS(p, q) in bits for two distributions over the same index set (0 log 0 = 0)."""
    p, q = p.double(), q.double()
    m = 0.5 * (p + q)

    def half_kl(a: Tensor) -> Tensor:
        pos = a > 0
        return (a[pos] * torch.log2(a[pos] / m[pos])).sum()

    return float(0.5 * (half_kl(p) + half_kl(q)))


def ngram_js(a: Tensor, b: Tensor, n: int, vocab: int) -> float:
    """JS in bits between the n-gram distributions of two sets of sequences ``(N, L)``."""
    ca, cb = ngram_codes(a, n, vocab), ngram_codes(b, n, vocab)
    _, inverse = torch.unique(torch.cat([ca, cb]), return_inverse=True)
    k = int(inverse.max()) + 1
    pa = torch.bincount(inverse[: ca.numel()], minlength=k).double()
    pb = torch.bincount(inverse[ca.numel() :], minlength=k).double()
    return js_from_probs(pa / pa.sum(), pb / pb.sum())


def js_to_law(seqs: Tensor, n: int, vocab: int, law: Tensor) -> float:
    """Exact JS in bits between the n-gram distribution of ``seqs`` and a law ``(vocab**n,)``."""
    if law.numel() != vocab**n:
        raise WganError(f"an n-gram law for n={n} has {vocab**n} entries, got {law.numel()}")
    codes = ngram_codes(seqs.cpu(), n, vocab)
    q = torch.bincount(codes, minlength=vocab**n).double()
    return js_from_probs(q / q.sum(), law.double().cpu())


def js_strings(a: Sequence[str], b: Sequence[str], n: int) -> float:
    """The same JS on lists of strings (pure Python, ``gan_language.py``'s way; for checks)."""

    def dist(samples: Sequence[str]) -> dict[str, float]:
        c = Counter(s[i : i + n] for s in samples for i in range(len(s) - n + 1))
        total = sum(c.values())
        return {g: v / total for g, v in c.items()}

    p, q = dist(a), dist(b)
    js = 0.0
    for g in set(p) | set(q):
        pg, qg = p.get(g, 0.0), q.get(g, 0.0)
        m = 0.5 * (pg + qg)
        js += 0.5 * (pg * math.log2(pg / m) if pg else 0.0)
        js += 0.5 * (qg * math.log2(qg / m) if qg else 0.0)
    return js


def ngram_metrics(
    fake: Tensor,
    real: Tensor,
    real_other: Tensor,
    vocab: int,
    laws: Sequence[Tensor | None] = (),
    max_n: int = MAX_N,
) -> dict[str, float]:
    """JS-1..``max_n`` of generated vs held-out text, with the real-vs-real baseline.

    Args:
        fake: generated sequences ``(N, L)`` (argmax-decoded indices).
        real: held-out sequences ``(N, L)``.
        real_other: another, disjoint held-out set of the same size (the baseline).
        vocab: the vocabulary size ``V``.
        laws: the true n-gram law for n = 1, 2, ... (dense ``(V**n,)``) when known.

    Returns:
        ``js{n}`` (generated vs held-out), ``js{n}_baseline`` (held-out vs held-out), and when
        the law is known ``js{n}_exact`` (generated vs the truth) and ``js{n}_exact_baseline``
        (held-out vs the truth: what a perfect model's sample of this size gets); all in bits.
    """
    out: dict[str, float] = {}
    for n in range(1, min(max_n, fake.shape[1]) + 1):
        out[f"js{n}"] = ngram_js(fake, real, n, vocab)
        out[f"js{n}_baseline"] = ngram_js(real_other, real, n, vocab)
        law = laws[n - 1] if n - 1 < len(laws) else None
        if law is not None:
            out[f"js{n}_exact"] = js_to_law(fake, n, vocab, law)
            out[f"js{n}_exact_baseline"] = js_to_law(real, n, vocab, law)
    return out
