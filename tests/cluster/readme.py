"""The README's cluster commands, as the tests run them: the lines of the bash block under a
heading, and the README's example addresses and folders swapped for this machine's."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def bash_block(heading: str) -> list[str]:
    """The non-empty lines of the first ```bash block after ``heading`` in the README."""
    text = README.read_text()
    block = text[text.index(heading) :]
    block = block[block.index("```bash") + 7 :]
    return [line for line in block[: block.index("```")].splitlines() if line.strip()]


def swapped(text: str, swap: dict[str, str]) -> str:
    """``text`` with every key of ``swap`` replaced by its value, in one pass."""
    return re.sub("|".join(map(re.escape, swap)), lambda m: swap[m.group()], text)
