"""Every code block of README.md and docs/*.md is exercised, so a wrong snippet fails CI.

- Python blocks run: each file's blocks in order, in one namespace (they build on each other),
  in a folder holding the files their placeholders name (``a.png``, ``some/folder``…).
- A Python block that opens with ``# fmnist_swish/NAME.py`` is a file of docs/plugins.md's worked
  plugin: its code must be that file's in ``tests/plugins/fmnist_swish`` (which the plugin tests
  install), compared as syntax trees (docstring and ``__future__`` import aside).
- Shell blocks: every ``fmnist`` command is parsed by fmnist's own parser (a wrong command, flag
  or choice fails) and every ``nox -s NAME`` must name a session of the noxfile; they are not
  run (clusters, servers, long trainings), and the test says so.
- A block preceded by ``<!-- docs-test: skip REASON -->`` is skipped, saying why.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(.*?)\s*-->")
SWISH = REPO / "tests" / "plugins" / "fmnist_swish" / "src" / "fmnist_swish"


def blocks(path: Path) -> list[dict]:
    """The fenced code blocks of ``path``: language, first line number, text, skip reason."""
    found, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        skip = SKIP.search(before)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        found.append(
            {
                "language": fence.group(1),
                "line": i + 1,
                "text": "\n".join(lines[i + 1 : end]) + "\n",
                "skip": skip.group(1) if skip else None,
            }
        )
        i = end + 1
    return found


def code_of(source: str) -> str:
    """The code of ``source`` as its syntax tree, its docstring and ``__future__`` imports left
    out: a block shown in the docs equals the file whatever the line breaks."""
    import ast

    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    body = [n for n in body if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    return "\n".join(ast.dump(node) for node in body)


def all_blocks(language: set[str]) -> list[tuple[Path, dict]]:
    return [(p, b) for p in DOCS for b in blocks(p) if b["language"] in language]


def placeholders(folder: Path) -> None:
    """The files the snippets name, made from the real test set."""
    from PIL import Image

    from fmnist_core import load_dataset

    images = load_dataset().test.images
    for name in ("a.png", "image.png", "shirt.png"):
        Image.fromarray(images[0]).save(folder / name)
    for sub in ("some/folder", "folder"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for k in range(3):
            Image.fromarray(images[k + 1]).save(folder / sub / f"{k}.png")


RUNNER = """
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__docs__"}
for block in blocks:
    try:
        exec(compile(block["text"], f"{block['file']}:{block['line']}", "exec"), namespace)
    except Exception:
        print(f"the block at {block['file']} line {block['line']} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"ran {block['file']} line {block['line']}")
"""


@pytest.mark.parametrize("path", [p for p in DOCS if any(
    b["language"] == "python" for b in blocks(p))], ids=lambda p: p.name)  # fmt: skip
def test_python_blocks_run(path, tmp_path):
    runnable, skipped = [], []
    for block in blocks(path):
        if block["language"] != "python":
            continue
        plugin_file = re.match(r"# fmnist_swish/(\w+\.py)", block["text"])
        if plugin_file:
            shipped = code_of((SWISH / plugin_file.group(1)).read_text())
            assert code_of(block["text"]) == shipped, (
                f"{path.name} line {block['line']}: not the code of {SWISH / plugin_file.group(1)}"
            )
            continue
        if block["skip"]:
            skipped.append(f"line {block['line']}: {block['skip']}")
            continue
        runnable.append({**block, "file": path.name})
    if not runnable:
        pytest.skip(f"no runnable Python block in {path.name}; skipped: {skipped}")
    placeholders(tmp_path)
    (tmp_path / "blocks.json").write_text(json.dumps(runnable))
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"},
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ran ") == len(runnable)


def nox_sessions() -> set[str]:
    found = set()
    for args, function in re.findall(
        r"@nox\.session(?:\(([^)]*)\))?\ndef (\w+)\(", (REPO / "noxfile.py").read_text()
    ):
        named = re.search(r'name="([\w-]+)"', args)
        found.add(named.group(1) if named else function)
    return found


def commands(text: str) -> list[str]:
    """The shell block's commands: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()
            and not line.lstrip().startswith("#")]  # fmt: skip


@pytest.mark.parametrize(
    "path, block",
    all_blocks({"bash", "sh", "shell", "console"}),
    ids=lambda v: v.name if isinstance(v, Path) else f"line{v['line']}",
)
def test_shell_blocks_name_real_commands_and_flags(path, block):
    from fmnist_core.cli import build_parser

    if block["skip"]:
        pytest.skip(block["skip"])
    parser, sessions, checked = build_parser(), nox_sessions(), 0
    for command in commands(block["text"]):
        words = shlex.split(command.replace("$(", "(").replace("[", "").replace("]", ""))
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)  # VARIABLE=value before the command
        if "-m" in words and "fmnist_core.cli" in words:
            words = ["fmnist", *words[words.index("fmnist_core.cli") + 1 :]]
        if words[:1] == ["fmnist"]:
            args = [w.split("|")[0] for w in words[1:]]
            try:
                parser.parse_args(args or ["--help"])
            except SystemExit as exit:
                assert exit.code == 0, f"{path.name} line {block['line']}: `{command}` is refused"
            checked += 1
        for session in re.findall(r"nox(?:\.sh)? -s ([\w-]+)", command):
            assert session in sessions, (
                f"{path.name} line {block['line']}: no nox session {session}"
            )
            checked += 1
    if not checked:
        pytest.skip("no fmnist or nox command in this block (pip, ray, curl: not parsed)")
