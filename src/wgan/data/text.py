"""Character-level text: a vocabulary, a text file cut into sequences, and an embedded corpus.

The WGAN-GP paper (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", sec. 5 and
appendix; reference code ``gan_language.py``) trains a character-level language model with no
sampling step: real text is one-hot, ``x[b, v, t] = 1`` when character ``t`` of sequence ``b``
is symbol ``v``, a float tensor of shape ``(B, V, L)``; the generator outputs a softmax over
the ``V`` symbols at each of the ``L`` positions, and the critic reads those vectors directly.

Two datasets, both with ``is_text = True``, ``shape = (V, L)`` and ``sample(n, generator,
device) -> (n, V, L)`` one-hot floats:

* :class:`TextDataset` from a UTF-8 file (``data.name=text data.path=FILE``): the text is cut
  into non-overlapping sequences of ``data.seq_len`` characters (a trailing remainder is
  dropped; ``\\r\\n`` is read as ``\\n``). The **last 10 %** of the sequences (at least 2) are
  held out for the metrics and never trained on; training batches are drawn uniformly with
  replacement from the rest. The vocabulary is the ``data.vocab_size - 1`` most frequent
  characters of the whole file (ties: lower code point first) plus the unknown symbol at index
  0, which every other character maps to. The run stores it in ``data.vocab`` (its config and
  checkpoint), so sampling decodes without the file.
* :class:`MarkovText` (``data.name=markov_text``), made by code, nothing downloaded: English-like
  sentences from a small stochastic grammar, such as ``the old dog ran on a hat. a cat saw
  the man. ``. The words (:data:`CORPUS_WORDS`: determiners, adjectives, nouns, verbs,
  prepositions) follow a first-order Markov chain over word classes (:data:`CORPUS_GRAMMAR`;
  a noun ends the sentence with ``". "`` or continues with ``" "``), and within its class a
  word is picked with Zipf weights ``1 / rank`` (normalised). Each word with its separator is
  a *token*; the characters are then a Markov chain over the states ``(token, position)``, each
  state emitting one character. That chain is irreducible and aperiodic (checked when it is
  built), so it has one stationary law ``pi`` over states. Every sequence starts from ``pi``
  and runs ``L - 1`` transitions, so the n-grams at every position have the stationary law,
  known exactly (:meth:`MarkovText.ngram_probs`): with ``Q`` the state transition law and
  ``e(s)`` the character of state ``s``,
  ``p(c_1..c_n) = sum over s_1..s_n of pi(s_1) Q(s_1, s_2) ... Q(s_{n-1}, s_n)`` restricted to
  ``e(s_i) = c_i``, computed by a forward recursion. The text has 17 words, 18 symbols and
  about 0.64 bits of entropy per character (the state chain's entropy rate), so a small model
  learns its 4-grams on a laptop CPU in minutes,
  while the exact law makes every metric's distance to the truth computable. Training batches
  are fresh sequences; the held-out sets are fixed sequences drawn from their own seed.

``heldout_pair(n)`` returns two disjoint held-out sets of ``n`` sequences each (index tensors
``(n, L)``): the metrics compare generated text with the first and, as the real-vs-real
baseline, the second with the first (:mod:`wgan.metrics.ngram`).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from wgan.errors import ConfigError, DataError, WganError
from wgan.store.printable import printable

__all__ = [
    "CORPUS_GRAMMAR",
    "CORPUS_WORDS",
    "MARKOV_SEED",
    "UNKNOWN",
    "MarkovText",
    "TextDataset",
    "Vocabulary",
    "is_text_dataset",
    "load_text_file",
    "make_text_dataset",
]

UNKNOWN = "\ufffd"  # how the unknown symbol (index 0) is decoded: the replacement character
HELDOUT_FRACTION = 0.1  # the last 10 % of a file's sequences are held out for the metrics
MIN_SEQUENCES = 20  # a file must hold at least this many sequences of seq_len characters
MAX_FILE_BYTES = 1 << 30  # 1 GiB: larger files are refused (the text is held in memory)
MAX_EXTRA_UNKNOWN = 0.001
"""A file read with a run's stored vocabulary (a resume with another ``data.path``) may leave at
most this fraction (0.1 %) of its characters unknown beyond those its own vocabulary of
``data.vocab_size`` symbols would leave out; more is refused, naming the fraction and the
first unknown characters (a model trained on the unknown symbol learns nothing of the text)."""
MARKOV_SEED = 2017  # seeds the two fixed held-out sets of the embedded corpus
# the words of the embedded corpus's grammar, by class, most frequent first (Zipf weights)
CORPUS_WORDS: dict[str, tuple[str, ...]] = {
    "det": ("the", "a"),
    "adj": ("big", "old", "red"),
    "noun": ("cat", "dog", "man", "bird", "hat"),
    "verb": ("saw", "had", "ate", "ran"),
    "prep": ("on", "in", "at"),
}
# P(next class | class); "noun." is a noun that ends its sentence (followed by ". ")
CORPUS_GRAMMAR: dict[str, dict[str, float]] = {
    "det": {"adj": 0.3, "noun": 0.45, "noun.": 0.25},
    "adj": {"noun": 0.6, "noun.": 0.4},
    "noun": {"verb": 0.7, "prep": 0.3},
    "noun.": {"det": 1.0},
    "verb": {"det": 0.6, "prep": 0.4},
    "prep": {"det": 1.0},
}
MARKOV_HELDOUT = 8192  # sequences in each of the two fixed held-out sets of the Markov corpus


def is_text_dataset(dataset) -> bool:
    """True for character datasets (one-hot ``(N, V, L)`` samples)."""
    return bool(getattr(dataset, "is_text", False))


class Vocabulary:
    """Index 0 is the unknown symbol; ``chars[i - 1]`` is symbol ``i`` (``size = len + 1``)."""

    def __init__(self, chars: str) -> None:
        if not isinstance(chars, str) or not chars:
            raise ConfigError("the vocabulary must be a non-empty string of characters")
        if len(set(chars)) != len(chars):
            raise ConfigError("the vocabulary (data.vocab) repeats a character")
        if UNKNOWN in chars:
            raise ConfigError(f"the vocabulary may not hold {UNKNOWN!r} (the unknown symbol)")
        self.chars = chars
        self.size = len(chars) + 1
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(codes)
        self._sorted = codes[self._order]
        self._table = np.array([UNKNOWN, *chars])

    @classmethod
    def from_text(cls, text: str, size: int) -> Vocabulary:
        """The ``size - 1`` most frequent characters of ``text`` (ties: lower code point)."""
        counts = Counter(text)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        chars = "".join(c for c, _ in ranked if c != UNKNOWN)[: max(1, size - 1)]
        return cls(chars)

    def encode(self, text: str) -> Tensor:
        """Symbol indices ``(len(text),)`` int64; unknown characters become 0."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._sorted, codes).clip(0, len(self._sorted) - 1)
        known = self._sorted[pos] == codes
        idx = np.where(known, self._order[pos] + 1, 0)
        return torch.from_numpy(idx)

    def decode(self, indices: Tensor) -> list[str]:
        """Strings from indices ``(N, L)`` (or one string from ``(L,)``)."""
        idx = torch.as_tensor(indices).long().cpu().numpy()
        if idx.ndim == 1:
            return ["".join(self._table[idx])]
        return ["".join(row) for row in self._table[idx]]


class _Text:
    """What both text datasets share: one-hot batches, decoding, held-out pairs."""

    is_text = True
    is_image = False
    n_classes = 0
    vocab: Vocabulary
    seq_len: int
    heldout: Tensor | None  # (M, L) int64 held-out sequences (None: vocabulary only)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.vocab.size, self.seq_len)

    @property
    def dim(self) -> int:
        return self.vocab.size * self.seq_len

    def one_hot(self, indices: Tensor) -> Tensor:
        """``(n, L)`` indices -> ``(n, V, L)`` float one-hot."""
        x = torch.nn.functional.one_hot(indices, self.vocab.size)  # (n, L, V)
        return x.transpose(1, 2).float()  # (n, V, L)

    def decode(self, x: Tensor) -> list[str]:
        """Argmax decoding of softmax / one-hot ``(n, V, L)`` (or indices ``(n, L)``)."""
        if x.ndim == 3:
            x = x.argmax(1)  # (n, L)
        return self.vocab.decode(x)

    def sample_with_labels(self, n: int, generator=None, device=None):
        raise WganError("text data has no labels (a conditional GAN needs them)")

    def heldout_pair(self, n: int) -> tuple[Tensor, Tensor]:
        """Two disjoint held-out sets of ``min(n, M // 2)`` sequences each, ``(n, L)`` int64."""
        if self.heldout is None:
            where = getattr(self, "source", "") or "the run's text file"
            raise DataError(
                f"the metrics need the held-out text of {where}, which is not readable "
                "(put the file back there; sampling works without it)"
            )
        n = min(int(n), self.heldout.shape[0] // 2)
        return self.heldout[:n], self.heldout[n : 2 * n]

    def ngram_probs(self, n: int) -> Tensor | None:  # noqa: ARG002 - no truth by default
        """The exact n-gram law, dense ``(V**n,)``; None when unknown (a text file)."""
        return None


class TextDataset(_Text):
    """Sequences of a text file: ``train`` ``(N, L)`` and ``heldout`` ``(M, L)`` int64 indices."""

    def __init__(
        self,
        vocab: Vocabulary,
        seq_len: int,
        train: Tensor | None,
        heldout: Tensor | None,
        name: str = "text",
        source: str = "",
    ) -> None:
        self.vocab, self.seq_len, self.train, self.heldout = vocab, seq_len, train, heldout
        self.name, self.source = name, source

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """``n`` training sequences drawn uniformly with replacement, one-hot ``(n, V, L)``."""
        if self.train is None:
            raise WganError("this text dataset holds only its vocabulary (no text to sample)")
        device = torch.device(device) if device is not None else self.train.device
        if self.train.device != device:
            self.train = self.train.to(device)
        idx = torch.randint(self.train.shape[0], (n,), generator=generator, device=device)
        return self.one_hot(self.train[idx])


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DataError(f"{path}: no such file (data.path for dataset 'text')")
    if not path.is_file():
        raise DataError(f"{path}: not a file (data.path for dataset 'text' names a text file)")
    try:  # a file without read permission (or a failing disk) is unreadable, not unwritable
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{path}: the text file is empty")
        if size > MAX_FILE_BYTES:
            raise DataError(f"{path}: {size:,} bytes; text files up to {MAX_FILE_BYTES:,} are read")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the text file ({exc.strerror or exc})") from None
    if b"\x00" in raw:
        raise DataError(f"{path}: a binary file (it holds NUL bytes), not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte at offset {err.start}); binary file?"
        ) from None
    return text.replace("\r\n", "\n").removeprefix("\ufeff")


def load_text_file(
    path: str | Path, seq_len: int = 32, vocab_size: int = 64, vocab: str | None = None
) -> TextDataset:
    """A UTF-8 file as sequences of ``seq_len`` characters (see the module docstring).

    ``vocab`` (the run's stored vocabulary) replaces the one built from the file.

    Raises:
        DataError: a missing, unreadable, empty, binary (NUL bytes or invalid UTF-8) or too
            short file (fewer than :data:`MIN_SEQUENCES` sequences of ``seq_len`` characters);
            with ``vocab``, a file that vocabulary covers worse than its own would, by more
            than :data:`MAX_EXTRA_UNKNOWN` of its characters.
    """
    path = Path(path).expanduser()
    text = _read_text(path)
    n_seq = len(text) // seq_len
    if n_seq < MIN_SEQUENCES:
        raise DataError(
            f"{path}: too short: {len(text):,} characters make {n_seq} sequences of "
            f"data.seq_len={seq_len}; at least {MIN_SEQUENCES} are needed "
            f"({MIN_SEQUENCES * seq_len:,} characters)"
        )
    voc = Vocabulary(vocab) if vocab else Vocabulary.from_text(text, vocab_size)
    indices = voc.encode(text)
    if vocab:
        _check_coverage(path, text, indices, vocab_size)
    seqs = indices[: n_seq * seq_len].view(n_seq, seq_len)  # (N, L)
    n_held = max(2, math.ceil(HELDOUT_FRACTION * n_seq))
    return TextDataset(voc, seq_len, seqs[:-n_held], seqs[-n_held:], "text", str(path))


def _check_coverage(path: Path, text: str, indices: Tensor, vocab_size: int) -> None:
    """Refuse ``text`` when the stored vocabulary leaves more of it unknown (index 0 in
    ``indices``) than its own ``vocab_size - 1`` most frequent characters would, by more than
    :data:`MAX_EXTRA_UNKNOWN`; the run's own file passes (the same vocabulary)."""
    unknown = indices == 0
    fraction = float(unknown.double().mean())
    if fraction <= MAX_EXTRA_UNKNOWN:
        return
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    chars, counts = np.unique(codes, return_counts=True)
    counts = np.sort(counts[chars != ord(UNKNOWN)])[::-1]  # as Vocabulary.from_text ranks them
    own = 1.0 - float(counts[: max(1, vocab_size - 1)].sum()) / len(codes)
    if fraction - own <= MAX_EXTRA_UNKNOWN:
        return
    first: list[str] = []
    for i in unknown.nonzero().flatten()[:10_000].tolist():  # the first, in the file's order
        if text[i] not in first:
            first.append(text[i])
        if len(first) == 8:
            break
    shown = ", ".join(f"'{printable(c)}'" for c in first)
    raise DataError(
        f"{printable(path)}: {fraction:.2%} of its characters are not in the run's vocabulary "
        f"(data.vocab), its own would leave out {own:.2%}; at most {MAX_EXTRA_UNKNOWN:.1%} "
        f"more is accepted, as a model trained on the unknown symbol learns nothing of the "
        f"text (first unknown characters: {shown}): train a new run on this file"
    )


# --------------------------------------------------------------------- the embedded corpus


def is_primitive(q: np.ndarray) -> bool:
    """Whether the Markov chain with transition law ``q`` (S, S) is irreducible and aperiodic.

    That holds exactly when some power of ``q`` is positive everywhere, and then (Wielandt's
    bound) already ``q ** ((S - 1) ** 2 + 1)`` is; the power of the 0/1 pattern is taken by
    repeated squaring, clipped to stay 0/1.
    """
    n_states = q.shape[0]
    reach = (q > 0).astype(np.float64)
    power = np.eye(n_states)
    exponent = (n_states - 1) ** 2 + 1
    while exponent:
        if exponent & 1:
            power = np.minimum(power @ reach, 1.0)
        reach = np.minimum(reach @ reach, 1.0)
        exponent >>= 1
    return bool((power > 0).all())


def corpus_chain() -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The embedded corpus as a Markov chain over ``(token, position)`` states.

    Returns ``(alphabet, emit, q, pi)``: the K characters that occur (sorted), ``emit`` (S,)
    int64 the character index each of the S states emits, ``q`` (S, S) float64 the state
    transition law and ``pi`` (S,) its stationary law (see the module docstring).

    Raises WganError if the chain is not irreducible and aperiodic (it is, which a test checks).
    """
    tokens: list[tuple[str, str, float]] = []  # (class, text, weight within its class)
    for cls in CORPUS_GRAMMAR:
        words = CORPUS_WORDS[cls.rstrip(".")]
        zipf = np.array([1.0 / (r + 1) for r in range(len(words))])
        end = ". " if cls.endswith(".") else " "
        tokens += [(cls, w + end, z) for w, z in zip(words, zipf / zipf.sum(), strict=True)]
    start = np.cumsum([0] + [len(t) for _, t, _ in tokens])  # first state of each token
    n_states = int(start[-1])
    alphabet = "".join(sorted({c for _, t, _ in tokens for c in t}))
    emit = np.array([alphabet.index(c) for _, t, _ in tokens for c in t], dtype=np.int64)
    q = np.zeros((n_states, n_states))
    for i, (cls, text, _) in enumerate(tokens):
        first = int(start[i])
        for pos in range(len(text) - 1):  # inside a token: the next character, surely
            q[first + pos, first + pos + 1] = 1.0
        for j, (nxt, _, weight) in enumerate(tokens):  # the token's last character
            q[first + len(text) - 1, int(start[j])] += CORPUS_GRAMMAR[cls].get(nxt, 0.0) * weight
    if not is_primitive(q):
        raise WganError("the embedded corpus's chain is not irreducible and aperiodic")
    w, v = np.linalg.eig(q.T)
    pi = np.abs(np.real(v[:, np.argmin(np.abs(w - 1.0))]))  # eigenvector of eigenvalue 1
    return alphabet, emit, q, pi / pi.sum()


class MarkovText(_Text):
    """The embedded corpus: sentences of a small stochastic grammar (the module docstring)."""

    name = "markov_text"
    source = "the embedded grammar (a Markov chain over words)"

    def __init__(self, seq_len: int = 32) -> None:
        if seq_len < 1:
            raise ConfigError("data.seq_len must be >= 1 for markov_text")
        self.seq_len = seq_len
        alphabet, emit, q, pi = corpus_chain()
        self.vocab = Vocabulary(alphabet)
        self.emit64, self.q64, self.pi64 = emit, q, pi
        # inverse-CDF sampling: cumulative laws, the last entry forced to 1 (no rounding gap)
        cdf = torch.from_numpy(np.cumsum(q, axis=1)).float()  # (S, S)
        cdf[:, -1] = 1.0
        pi_cdf = torch.from_numpy(np.cumsum(pi)).float()  # (S,)
        pi_cdf[-1] = 1.0
        self._tables_cpu = (cdf, pi_cdf, torch.from_numpy(emit) + 1)  # + 1: vocabulary index
        self._on: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        g = torch.Generator().manual_seed(MARKOV_SEED + 1)
        self.heldout = self.sample_indices(2 * MARKOV_HELDOUT, g)  # (2 * 8192, L)

    def _tables(self, device) -> tuple[Tensor, Tensor, Tensor]:
        key = str(device)
        if key not in self._on:
            self._on[key] = tuple(t.to(device) for t in self._tables_cpu)  # type: ignore[assignment]
        return self._on[key]

    def sample_indices(
        self, n: int, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """``n`` fresh sequences as vocabulary indices ``(n, L)`` (1..K; 0 never occurs)."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        cdf, pi_cdf, emit = self._tables(device)  # (S, S), (S,) cumulative; (S,) indices
        last = cdf.shape[0] - 1
        u = torch.rand(self.seq_len, n, generator=generator, device=device)  # (L, n)
        state = torch.searchsorted(pi_cdf, u[0], right=True).clamp_max(last)  # (n,) ~ pi
        out = [state]
        for t in range(1, self.seq_len):
            row = cdf[state]  # (n, S): the cumulative law of the next state
            state = torch.searchsorted(row, u[t].unsqueeze(1), right=True).squeeze(1)
            out.append(state.clamp_max(last))
        return emit[torch.stack(out, 1)]  # (n, L) the characters the states emit

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """``n`` fresh sequences, one-hot ``(n, V, L)``."""
        return self.one_hot(self.sample_indices(n, generator, device))

    def ngram_probs(self, n: int) -> Tensor:
        """The exact stationary law of n-grams (n = 1..4), dense ``(V**n,)`` float64.

        Entry ``sum_k i_k V**(n-1-k)`` is the probability of the symbols ``i_1 .. i_n``
        (vocabulary indices; any n-gram holding the unknown symbol 0 has probability 0).
        """
        if not 1 <= n <= 4:
            raise WganError(f"exact n-gram laws are for n = 1..4, got {n}")
        k = self.vocab.size - 1
        e = np.eye(k)[self.emit64]  # (S, K): e[s, c] = 1 when state s emits c
        # forward recursion: a[prefix, s] = P(the first m characters are prefix, state m is s)
        a = (self.pi64[:, None] * e).T  # (K, S)
        for _ in range(n - 2):
            b = a @ self.q64  # (K^m, S): the next state
            a = (b[:, None, :] * e.T[None, :, :]).reshape(-1, e.shape[0])  # (K^(m+1), S)
        p = (a.sum(1) if n == 1 else (a @ self.q64) @ e).reshape((k,) * n)  # last: sum over s
        full = np.zeros((self.vocab.size,) * n)
        full[(slice(1, None),) * n] = p  # shift symbols to vocabulary indices 1..K
        return torch.from_numpy(full.reshape(-1))


def make_text_dataset(cfg, allow_missing: bool = False) -> _Text:
    """The text dataset a :class:`wgan.config.DataConfig` names (``text`` or ``markov_text``).

    ``allow_missing`` (loading a finished run): an unreadable file gives a dataset that holds
    only the stored vocabulary (sampling and decoding work, the metrics say what is missing).
    """
    if cfg.name == "markov_text":
        if cfg.path is not None:
            raise ConfigError("dataset 'markov_text' is made by code; data.path must not be set")
        return MarkovText(cfg.seq_len)
    if cfg.path is None or str(cfg.path).strip() == "":
        raise ConfigError("dataset 'text' is read from a file: set data.path=FILE (UTF-8 text)")
    try:
        return load_text_file(cfg.path, cfg.seq_len, cfg.vocab_size, cfg.vocab)
    except DataError:
        if not (allow_missing and cfg.vocab):
            raise
        return TextDataset(Vocabulary(cfg.vocab), cfg.seq_len, None, None, "text", str(cfg.path))
