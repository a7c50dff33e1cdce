"""README is executable documentation: its runnable blocks (fenced as ```python runnable or
```bash runnable) run in order against a live server, and every other ``voxgate`` command it
shows names a command and options that exist. The first failure names its block's line."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Voxgate
from tests.rtc.conftest import api_for

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.M | re.S)


@dataclass
class Block:
    lang: str
    runnable: bool
    text: str
    line: int


def blocks(path: Path = README) -> list[Block]:
    source = path.read_text()
    return [
        Block(m[1], "runnable" in m[2], m[3], source.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(source)
    ]


def on_this_server(text: str, vg: Voxgate) -> str:
    """README speaks of the default ports; the test's server has its own."""
    return text.replace("127.0.0.1:8000", f"127.0.0.1:{vg.api_port}").replace(
        "127.0.0.1:8001", f"127.0.0.1:{vg.rtc_port}"
    )


def test_every_runnable_block_runs_in_order(make_server: type[Voxgate]) -> None:
    vg = make_server().start()
    api = api_for(vg)
    cred = api.credential()
    env = {
        **vg.cli_env(),
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "KEY": vg.api_key,
        "CRED": cred["id"],
        "CONN": cred["connection_id"],
    }
    namespace: dict[str, Any] = {"KEY": vg.api_key, "__name__": "readme"}
    ran = 0
    for block in blocks():
        if not block.runnable:
            continue
        text = on_this_server(block.text, vg)
        where = f"README.md line {block.line} ({block.lang} block)"
        if block.lang == "python":
            try:
                _run_python(text, namespace)
            except Exception as exc:
                raise AssertionError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", text],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
        ran += 1
    assert ran >= 4
    assert namespace["jwt"].count(".") == 2  # the blocks really built on each other


def _run_python(text: str, namespace: dict[str, Any]) -> None:
    """A block as a notebook runs it: top-level ``await`` allowed, names shared."""
    code = compile(text, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def test_every_shown_voxgate_command_and_option_exists() -> None:
    """Commands meant as templates (hosts, files of yours) are not run; their options are
    checked against the CLI's own help, so a renamed option cannot hide in README."""
    assert _check_commands(README) >= 5


def test_every_voxgate_command_of_the_deployment_guide_exists() -> None:
    """The same for docs/deployment.md (its SIP edge commands are also run, with the test's
    ports and directories, by tests/sip/test_lifecycle.py)."""
    assert _check_commands(REPO / "docs" / "deployment.md", ("bash", "")) >= 4


def _check_commands(path: Path, langs: tuple[str, ...] = ("bash",)) -> int:
    checked = 0
    for block in blocks(path):
        if block.lang not in langs:
            continue
        for command in _voxgate_commands(block.text):
            words = [w for w in command if not w.startswith("$")]
            words_path = [w for w in words[1:] if re.fullmatch(r"[a-z][a-z-]*", w)][:2]
            options = {w.split("=", 1)[0] for w in words if w.startswith("--")}
            help_text = _help(words_path)
            for option in options:
                assert option in help_text, (
                    f"{path.name} line {block.line}: `{' '.join(command)}` uses {option}, "
                    f"which `voxgate {' '.join(words_path)} --help` does not list"
                )
            checked += 1
    return checked


def _voxgate_commands(text: str) -> list[list[str]]:
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        if words and Path(words[0]).name == "voxgate":
            found.append(words)
    return found


_HELP: dict[tuple[str, ...], str] = {}


def _help(path: list[str]) -> str:
    """``voxgate [group [command]] --help``, trimmed to the deepest level that exists."""
    key = tuple(path)
    if key not in _HELP:
        for depth in range(len(path), -1, -1):
            run = subprocess.run(
                [sys.executable, "-m", "voxgate", *path[:depth], "--help"],
                capture_output=True,
                text=True,
                env={**os.environ, "COLUMNS": "300"},
                check=False,
            )
            if run.returncode == 0:
                _HELP[key] = run.stdout
                break
    return _HELP[key]
