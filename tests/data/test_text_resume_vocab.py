"""Issue 24, row 5: a resumed text run reads its file with the vocabulary it was trained with, so
a file of other characters would train on the unknown symbol. Such a file is refused, naming the
fraction and the first unknown characters (escaped); the run's own file, and a file with only a
few new characters, are accepted (:data:`wgan.data.text.MAX_EXTRA_UNKNOWN`, 0.1 %)."""

from __future__ import annotations

import pytest
from helpers import tiny

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data import text as text_data
from wgan.data.text import load_text_file
from wgan.errors import DataError
from wgan.training.train import train

TINY = tiny("data.seq_len=8", width=8, depth=1, batch=8, steps=2, eval_samples=16)
# 27 distinct characters, of which a vocabulary of 8 symbols (7 characters + the unknown one)
# keeps the 7 most frequent (" theaom"): 24.75 % of the text is unknown to it.
TEXT = ("the quick brown fox jumps over the lazy dog " + "the hat on the mat " * 3) * 30


def test_the_rule_in_one_call(tmp_path):
    run_vocab = "abcdefg "
    ok = tmp_path / "ok.txt"
    ok.write_text(("abc defg " * 1200) + "h", encoding="utf-8")  # 1 new character in 10,801
    assert load_text_file(ok, seq_len=8, vocab=run_vocab).vocab.chars == run_vocab
    few = tmp_path / "few.txt"  # 0.2 %: above the 0.1 % (its own vocabulary would hold "h")
    few.write_text(("abc defg " * 111) + "h" * 2, encoding="utf-8")  # 2 in 1,001
    with pytest.raises(DataError, match="0.20% of its characters .* leave out 0.00%"):
        load_text_file(few, seq_len=8, vocab=run_vocab)
    bad = tmp_path / "bad.txt"
    bad.write_text(("abc defg " * 100) + "\x1b[31mZ\u202e" * 5, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_text_file(bad, seq_len=8, vocab=run_vocab)
    message = str(err.value)
    assert "3.74% of its characters are not in the run's vocabulary" in message  # 35 of 935
    assert "first unknown characters: '\\x1b', '[', '3', '1', 'm', 'Z', '\\u202e'" in message
    assert "\x1b" not in message and "\u202e" not in message and "\n" not in message
    assert f"{text_data.MAX_EXTRA_UNKNOWN:.1%}" == "0.1%" and "at most 0.1% more" in message


@pytest.fixture
def text_run(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    overrides = ["data.name=text", f"data.path={corpus}", "data.vocab_size=8", *TINY]
    cfg = resolve("text-wgan-gp", overrides)
    cfg.out_dir = str(tmp_path / "runs")
    return train(cfg).run_dir


def test_resume_with_another_alphabet_is_refused(text_run, tmp_path, capsys):
    other = tmp_path / "other.txt"
    other.write_text("αβγ δεζ ηθ " * 100, encoding="utf-8")
    code = main(["train", "--resume", str(text_run), f"data.path={other}", "train.steps=4"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert "other.txt: 72.73% of its characters are not in the run's vocabulary" in lines[0]
    assert "first unknown characters: 'α', 'β', 'γ', 'δ', 'ε', 'ζ', 'η', 'θ'" in lines[0]


def test_resume_with_its_own_file_or_a_few_new_characters_is_accepted(text_run, tmp_path):
    """The run's own file leaves 24.75 % of its characters unknown, far above 0.1 %, but so
    would its own vocabulary: it is accepted; so is a copy with one more character."""
    code = main(["train", "--resume", str(text_run), "train.steps=3"])
    assert code == 0
    more = tmp_path / "more.txt"
    more.write_text(TEXT + "é", encoding="utf-8")
    assert main(["train", "--resume", str(text_run), f"data.path={more}", "train.steps=4"]) == 0
