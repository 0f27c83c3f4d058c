"""The character-level language model: n-gram JS, the embedded Markov corpus, the vocabulary
through a checkpoint, one step of each objective on text, data errors through the CLI, sampling.
"""

import math

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.text import CORPUS_WORDS, MarkovText, Vocabulary, is_primitive, load_text_file
from wgan.errors import DataError
from wgan.metrics.ngram import js_strings, js_to_law, ngram_codes, ngram_js, ngram_metrics
from wgan.training.run import load_run
from wgan.training.train import train
from wgan.training.trainer import Trainer

TINY = tiny(
    "data.seq_len=8", "train.n_critic=2", width=8, depth=1, batch=8, steps=2, eval_samples=16
)

TEXT = "the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n" * 40


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _log2(x):
    return math.log(x, 2)


# ------------------------------------------------------------------------------ the metric


def test_js_matches_a_hand_computation():
    # unigrams: a = {a: 3/4, b: 1/4} ("aab" + "a"), b = {a: 1/4, c: 3/4}
    a, b = ["aab", "a"], ["acc", "c"]
    m = {"a": 0.5, "b": 1 / 8, "c": 3 / 8}
    p = {"a": 3 / 4, "b": 1 / 4}
    q = {"a": 1 / 4, "c": 3 / 4}
    hand = 0.5 * sum(v * _log2(v / m[g]) for g, v in p.items())
    hand += 0.5 * sum(v * _log2(v / m[g]) for g, v in q.items())
    assert js_strings(a, b, 1) == pytest.approx(hand, abs=1e-12)
    # bigrams: "ab","bc" vs "ab","bb": p = {ab: 1/2, bc: 1/2}, q = {ab: 1/2, bb: 1/2}
    # m = {ab: 1/2, bc: 1/4, bb: 1/4}; JS = 1/2 (1/2 log2 2) + 1/2 (1/2 log2 2) = 1/2
    assert js_strings(["abc"], ["abb"], 2) == pytest.approx(0.5, abs=1e-12)
    # disjoint supports: 1 bit; equal: 0
    assert js_strings(["aa"], ["bb"], 1) == pytest.approx(1.0)
    assert js_strings(["ab"], ["ba"], 1) == pytest.approx(0.0)


def test_tensor_js_equals_the_string_js():
    voc = Vocabulary("abcd")
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(1, 5, (7, 6), generator=gen)
    b = torch.randint(1, 4, (5, 6), generator=gen)
    sa, sb = voc.decode(a), voc.decode(b)
    for n in (1, 2, 3, 4):
        assert ngram_js(a, b, n, voc.size) == pytest.approx(js_strings(sa, sb, n), abs=1e-12)


def test_ngram_codes_are_within_sequences():
    x = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert ngram_codes(x, 2, 10).tolist() == [12, 23, 45, 56]


def test_exact_js_to_a_law():
    x = torch.tensor([[1, 1, 2, 2]])  # unigrams 1/2, 1/2 over {1, 2}
    law = torch.tensor([0.0, 0.5, 0.5])
    assert js_to_law(x, 1, 3, law) == pytest.approx(0.0, abs=1e-12)
    law = torch.tensor([0.0, 1.0, 0.0])  # m = (3/4, 1/4): hand value below
    hand = 0.5 * (0.5 * _log2(0.5 / 0.75) + 0.5 * _log2(0.5 / 0.25)) + 0.5 * _log2(1 / 0.75)
    assert js_to_law(x, 1, 3, law) == pytest.approx(hand, abs=1e-12)


# --------------------------------------------------------------------------- the corpus


def test_markov_corpus_law_matches_long_run_frequencies():
    ds = MarkovText(16)
    g = torch.Generator().manual_seed(5)
    seqs = ds.sample_indices(40_000, g)  # (40000, 16): 600k characters
    assert int(seqs.min()) >= 1  # the unknown symbol never occurs
    for n in (1, 2, 3, 4):
        law = ds.ngram_probs(n)
        assert float(law.sum()) == pytest.approx(1.0, abs=1e-9)
        counts = torch.bincount(ngram_codes(seqs, n, ds.vocab.size), minlength=law.numel())
        freq = counts.double() / counts.sum()
        tv = 0.5 * float((freq - law).abs().sum())
        # total variation of an empirical law of ~N draws is about sqrt(support / N)
        bound = {1: 0.01, 2: 0.03, 3: 0.06, 4: 0.12}[n]
        assert tv < bound, (n, tv)
        # and the frequent n-grams match one by one
        big = law > 0.01
        assert torch.allclose(freq[big], law[big], rtol=0.1), n
    # every position has the stationary law (first vs last character)
    p1 = ds.ngram_probs(1)
    for col in (0, 15):
        f = torch.bincount(seqs[:, col], minlength=ds.vocab.size).double() / seqs.shape[0]
        assert 0.5 * float((f - p1).abs().sum()) < 0.02


def test_markov_corpus_is_seeded_and_reproducible():
    a, b = MarkovText(8), MarkovText(8)
    assert torch.equal(a.heldout, b.heldout)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(a.sample(4, g1), b.sample(4, g2))
    x = a.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, ds_size(a), 8) and torch.equal(x.sum(1), torch.ones(4, 8))


def ds_size(ds):
    return len(ds.vocab.chars) + 1


def test_markov_corpus_is_sentences_of_its_grammar():
    ds = MarkovText(32)
    # 19 symbols: the letters of the words, space, '.', and the unknown symbol
    letters = {c for words in CORPUS_WORDS.values() for w in words for c in w}
    assert set(ds.vocab.chars) == letters | {" ", "."}
    lines = ds.decode(ds.heldout[:2000])
    words = {w for ws in CORPUS_WORDS.values() for w in ws}
    # each sequence's first and last words may be cut; the ones between are whole words
    inner = {w for line in lines for w in line.replace(".", " ").split()[1:-1]}
    assert inner == words
    assert any(". " in line for line in lines)
    assert not any("  " in line or ".." in line or ".  " in line for line in lines)


def test_primitive_chains_are_told_from_periodic_and_reducible_ones():
    assert is_primitive(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert not is_primitive(np.array([[0.0, 1.0], [1.0, 0.0]]))  # period 2
    assert not is_primitive(np.array([[1.0, 0.0], [0.5, 0.5]]))  # state 0 never leaves
    ds = MarkovText(4)
    assert is_primitive(ds.q64)
    # and pi is stationary: pi Q = pi
    np.testing.assert_allclose(ds.pi64 @ ds.q64, ds.pi64, atol=1e-12)


def test_ngram_metrics_real_vs_real_is_small():
    ds = MarkovText(32)
    real, other = ds.heldout_pair(640)
    laws = [ds.ngram_probs(n) for n in (1, 2, 3, 4)]
    m = ngram_metrics(other, real, other, ds.vocab.size, laws)
    assert m["js1"] == m["js1_baseline"] < 0.01
    assert m["js4_exact_baseline"] < m["js4_baseline"]
    uniform = torch.randint(1, ds.vocab.size, (640, 32), generator=torch.Generator())
    m2 = ngram_metrics(uniform, real, other, ds.vocab.size, laws)
    assert m2["js1"] > 10 * m["js1"] and m2["js4"] > 2 * m["js4"]


# --------------------------------------------------------------------------- text files


def test_text_file_is_cut_into_sequences(text_file):
    ds = load_text_file(text_file, seq_len=16, vocab_size=10)
    n = len(TEXT) // 16
    assert ds.train.shape[0] + ds.heldout.shape[0] == n
    assert ds.heldout.shape[0] == math.ceil(0.1 * n)
    assert ds.vocab.size == 10 and ds.vocab.chars[0] == " "  # the most frequent character
    assert ds.sample(3, torch.Generator()).shape == (3, 10, 16)
    full = load_text_file(text_file, 16, 100)
    assert full.vocab.decode(full.train[:1])[0] == TEXT[:16]
    assert "\ufffd" in ds.vocab.decode(ds.train[:1])[0]  # rare characters are unknown


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"abc\x00def" * 100, "binary"),
        (b"\xff\xfe\xfa" * 100, "not UTF-8"),
        (b"too short", "too short"),
    ],
)
def test_bad_text_files_are_one_line_errors(tmp_path, capsys, content, needle):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        load_text_file(path)
    argv = ["train", "text-wgan-gp", "data.name=text", f"data.path={path}", *TINY]
    assert main([*argv, "--out-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error: ") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_text_without_path_is_a_config_error(tmp_path, capsys):
    assert main(["train", "text-wgan-gp", "data.name=text", *TINY]) == 2
    err = capsys.readouterr().err
    assert "data.path" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # WGAN-GP: penalty on interpolates of one-hot real and softmax fake
        ["objective.name=minimax", "constraint.penalty=none"],
        ["objective.name=nonsaturating", "constraint.penalty=none"],
    ],
)
def test_one_training_step_of_each_objective(tmp_path, overrides):
    cfg = resolve("text-wgan-gp", [*TINY, *overrides])
    trainer = Trainer(cfg, tmp_path / "run")
    out = trainer.train_step()
    assert len(out["d"]) == 2
    for terms in [*out["d"], out["g"]]:
        assert all(math.isfinite(float(v)) for v in terms.values())
    # the penalty (on interpolates of one-hot real and softmax fake) only with WGAN-GP
    assert ("penalty" in out["d"][0]) == (not overrides)


def test_vocabulary_round_trips_through_a_checkpoint(tmp_path, text_file):
    cfg = resolve("text-wgan-gp", ["data.name=text", f"data.path={text_file}", *TINY])
    cfg.out_dir = str(tmp_path / "runs")
    result = train(cfg, tensorboard=False)
    run = load_run(result.run_dir)
    vocab = load_text_file(text_file, 8, 64).vocab.chars
    assert run.cfg.data.vocab == vocab and "\n" in vocab
    lines = run.text(5)
    text_file.unlink()  # sampling decodes without the file
    again = load_run(result.run_dir)
    assert again.dataset.vocab.chars == vocab
    assert again.text(5) == lines and all(len(s) == 8 for s in lines)
    assert set("".join(lines)) <= set(vocab) | {"\ufffd"}
    with pytest.raises(DataError):
        load_run(result.run_dir).evaluate()  # the metrics need the held-out text


def test_sample_and_eval_through_the_cli(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    argv = ["train", "text-wgan-gp", *TINY, "train.eval_every=1", "train.figure_every=1"]
    assert main([*argv, "--out-dir", str(runs_dir)]) == 0
    run_dir = next(runs_dir.iterdir())
    assert (run_dir / "figures" / "latest.txt").is_file()
    out = tmp_path / "samples.txt"
    assert main(["sample", str(run_dir), "--num", "7", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7 and all(len(s) == 8 for s in lines)
    npy = tmp_path / "samples.npy"
    assert main(["sample", str(run_dir), "--num", "7", "--out", str(npy)]) == 0
    x = np.load(npy)
    assert x.shape == (7, ds_size(MarkovText(8)), 8) and np.allclose(x.sum(1), 1.0, atol=1e-5)
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--num", "32"]) == 0
    text = capsys.readouterr().out
    assert "real-vs-real" in text and "samples:" in text
    assert main(["eval", str(run_dir), "--num", "32", "--json"]) == 0
    import json

    metrics = json.loads(capsys.readouterr().out)
    for n in (1, 2, 3, 4):
        for key in (f"js{n}", f"js{n}_baseline", f"js{n}_exact", f"js{n}_exact_baseline"):
            assert 0.0 <= metrics[key] <= 1.0
    assert main(["sample", str(run_dir), "--num", "3", "--out", str(tmp_path / "x.csv")]) == 2
    from wgan.store.tracking import read_jsonl

    evals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "eval"]
    assert len(evals) == 2 and "js4" in evals[-1]
