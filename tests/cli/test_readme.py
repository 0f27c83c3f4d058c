"""The README's and docs' commands that are cheap to run (``--help``, ``--dry-run``, ``presets``,
``--version``) run as written and exit 0: the pages and the command line cannot drift apart."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CHEAP = ("--help", "--dry-run", "--version")


def _commands(page: Path) -> list[str]:
    """``wgan ...`` lines of the page's bash blocks, without their trailing comments."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        block = block.replace("\\\n", " ")  # continuation lines
        for line in block.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("wgan "):
                out.append(line)
    return out


def _cheap(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:  # not a complete shell command (a fragment in prose)
        return False
    return words[1:2] == ["presets"] or any(flag in words for flag in CHEAP)


CASES = [(p.name, c) for p in PAGES for c in _commands(p) if _cheap(c)]


def test_the_pages_have_cheap_commands_to_run():
    names = {name for name, _ in CASES}
    assert "README.md" in names and len(CASES) >= 4, CASES


@pytest.mark.parametrize("page,command", CASES, ids=[f"{p}: {c}" for p, c in CASES])
def test_cheap_command_runs(page, command, tmp_path):
    words = shlex.split(os.path.expanduser(command))
    out = subprocess.run(
        [sys.executable, "-m", "wgan", *words[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, f"{page}: {command}\n{out.stderr[-2000:]}"
    assert out.stdout.strip(), command
