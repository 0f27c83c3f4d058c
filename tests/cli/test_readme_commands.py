"""Every ``wgan ...`` command in the code blocks of README.md and docs/*.md is accepted as
written (issue 24, row 12: the README's own ``wgan experiment mode-collapse seeds=5`` failed).

``tests/cli/test_readme.py`` runs the cheap commands (``--help``, ``--dry-run``, ``presets``,
``--version``) in a subprocess. This file takes all the others too, in this process: the command
goes through ``wgan.cli.app.main`` with everything it checks before its work (the parser, the
preset or config file and every override, an experiment's settings, ``--seeds``/``--vary``, a
study file, output paths, counts), and the work itself is replaced by a stop: training,
resuming, loading a run, running an experiment, a sweep, a study or a benchmark raises
:class:`Reached` instead. A command passes when it returns 0 or reaches its work.

A ``--resume`` checks its overrides as a resume of a run of the default preset would (keys that
may change on resume, types, ranges). Commands that read a run (``sample``, ``eval``,
``interpolate``, ``lipschitz``) are checked up to loading it: the run directories the pages name
are examples. A config or study file the command names is written into the command's folder
first: the page's own ``yaml`` block that follows a mention of the file's name, else a config
that says ``extends: toy-wgan-gp`` (the README's "your own YAML file").
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest

from wgan.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```([\w-]*)\n(.*?)```", flags=re.S)


class Reached(BaseException):
    """The command got past its checks to its work (BaseException: no handler of the CLI's
    takes it for an error of its own)."""


def commands(page: Path) -> list[str]:
    """The ``wgan ...`` commands of the page's code blocks, without their trailing comments:
    a line that starts with ``wgan``, each ``&& wgan ...`` part of a line, and ``-m wgan ...``
    (``torchrun``, ``python -m``); continuation lines are joined. A placeholder command
    (``python -m wgan ...``) is left out."""
    out = []
    for _, block in FENCE.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if not part.startswith("wgan ") and " -m wgan " in f" {part} ":
                    part = "wgan " + part.split(" -m wgan ", 1)[1]
                if part.startswith("wgan ") and "..." not in part.split():
                    out.append(part)
    return out


def yaml_files(page: Path) -> dict[str, str]:
    """The page's ``yaml`` blocks that follow a mention of a file name (`` `NAME.yaml` ``) in
    the text before them: what that file holds."""
    text = page.read_text(encoding="utf-8")
    files = {}
    for match in re.finditer(r"```yaml\n(.*?)```", text, flags=re.S):
        before = text[: match.start()].rsplit("```", 1)[-1]
        names = re.findall(r"`([\w.-]+\.ya?ml)`", before)
        if names:
            files[names[-1]] = match.group(1)
    return files


CASES = [(p.name, c) for p in PAGES for c in commands(p)]
FILES = {name: body for p in PAGES for name, body in yaml_files(p).items()}


def _stop(*args, **kwargs):
    raise Reached


def _resume_checked(run_dir, overrides=None, *args, **kwargs):
    """``resume``: the overrides as a resume of a run of the default preset takes them."""
    from wgan.config import check_resume, resolve, set_value, validate

    saved = resolve(None, [])
    cfg = copy.deepcopy(saved)
    for key, value in (overrides or {}).items():
        set_value(cfg, key, value)
    check_resume(saved, validate(cfg))
    raise Reached


@pytest.fixture
def stopped_work(monkeypatch, tmp_path):
    """Every command's work replaced by :func:`_stop`; the command runs in ``tmp_path``."""
    import wgan.cli.interpolate
    import wgan.cli.run_commands
    import wgan.experiments.framework
    import wgan.experiments.report
    import wgan.scale.bench
    import wgan.scale.study
    import wgan.scale.sweep
    import wgan.scale.sweep_resume
    import wgan.training.run
    import wgan.training.train
    import wgan.training.trainer

    for module, name in [
        (wgan.training.train, "train"),
        (wgan.training.run, "load_run"),
        (wgan.experiments.framework.Experiment, "run"),
        (wgan.experiments.report, "run_all"),
        (wgan.scale.sweep, "run_sweep"),
        (wgan.scale.study, "run_study"),
        (wgan.scale.bench, "bench"),
        (wgan.training.trainer.Trainer, "__init__"),  # a path to training not named above
    ]:
        monkeypatch.setattr(module, name, _stop)
    monkeypatch.setattr(wgan.training.train, "resume", _resume_checked)
    monkeypatch.setattr(wgan.scale.sweep_resume, "resume_sweep", _resume_checked)
    for module in (wgan.cli.run_commands, wgan.cli.interpolate):  # --device cuda: a name here
        monkeypatch.setattr(module, "resolve_device", lambda name: name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WGAN_NO_PROGRESS", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/...: nothing of the user's is read
    return tmp_path


def _write_named_files(words: list[str], folder: Path) -> None:
    for word in words:
        if word.endswith((".yaml", ".yml")) and "=" not in word:
            body = FILES.get(Path(word).name, "extends: toy-wgan-gp\n")
            (folder / word).parent.mkdir(parents=True, exist_ok=True)
            (folder / word).write_text(body, encoding="utf-8")


def test_the_pages_give_the_commands_this_test_reads():
    pages = {page for page, _ in CASES}
    assert {"README.md", "many-runs.md", "images.md"} <= pages, pages
    assert len(CASES) >= 40, len(CASES)
    readme = [c for page, c in CASES if page == "README.md"]
    assert "wgan train" in readme  # `... && wgan train` of the set-up line
    assert "wgan train toy-wgan-gp" in readme  # `torchrun ... -m wgan train toy-wgan-gp`
    assert "gp-vs-clip.yaml" in FILES and "runs:" in FILES["gp-vs-clip.yaml"]


@pytest.mark.parametrize("page,command", CASES, ids=[f"{p}: {c}" for p, c in CASES])
def test_command_is_accepted(page, command, stopped_work, capsys):
    words = shlex.split(command)[1:]
    _write_named_files(words, stopped_work)
    try:
        code = main(words)
    except Reached:
        return
    except SystemExit as exit_:  # --version, --help, or a usage error
        code = exit_.code or 0
    err = capsys.readouterr().err
    assert code == 0, f"{page}: `{command}` exits {code}: {err.strip()}"
