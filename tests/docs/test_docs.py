"""README.md and docs/*.md: every relative link resolves, and every command line they show parses — `lpq`
overrides compose against conf/ (unknown keys and bad grammar fail), `snakemake --config` grids compose,
`make` targets exist. Nothing is run: the overrides are validated dry."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# `...`, `…`, `[DIR_C ...]`, `model=...`, `quant.config=…`, Snakemake wildcards `hw={design}`
PLACEHOLDER = re.compile(r"^(\.\.\.|…|\[.*\]|[A-Za-z_./]+=(\.\.\.|…)|.*\{\w+\}.*)$")
COMPARE_FLAGS = {"--reference", "--json"}


def _doc_id(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_docs_exist_and_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "the README is a front page (aim <= 250 lines): move reference to docs/"
    for page in ("formats", "ptq", "search", "hwmodel", "workflow", "results", "api", "testing"):
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"(docs/{page}.md)" in readme, f"README's docs map does not link docs/{page}.md"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_relative_links_resolve(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    dead = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://|^mailto:|^#", target):
            continue
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            dead.append(target)
    assert not dead, f"{_doc_id(doc)}: dead relative links {dead}"


def _shell_commands(doc: Path) -> list[str]:
    """Command lines of the doc: the lines of non-python code blocks (continuations joined, comments dropped, shell
    variables of the block substituted) and inline code spans that start with `lpq ` or `snakemake `."""
    text = doc.read_text()
    commands = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if lang in ("python", "json"):
            continue
        env: dict[str, str] = {}
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if m := re.fullmatch(r"([A-Z_]+)=\"(.*)\"", line):
                env[m[1]] = m[2]
                continue
            if m := re.fullmatch(r"for (\w+) in (\S+).*; do", line):
                env[m[1]] = m[2]
                continue
            for k, v in env.items():
                line = line.replace(f"${k}", v)
            if line.split(" ", 1)[0] in ("lpq", "snakemake", "make"):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    commands += [c for c in re.findall(r"`([^`\n]+)`", prose)
                 if re.match(r"lpq (train|evaluate|calibrate|search|hwsim|compare) |snakemake -", c) and "<command>" not in c]
    return commands


def _lpq_overrides(args: list[str]) -> list[str]:
    return [a for a in args if not PLACEHOLDER.match(a)]


CASES = [(d, c) for d in DOCS for c in _shell_commands(d)]


def test_commands_found():
    assert sum(1 for _, c in CASES if c.startswith("lpq ")) >= 20
    assert sum(1 for _, c in CASES if c.startswith("snakemake ")) >= 8


@pytest.mark.parametrize("doc,command", CASES, ids=[f"{_doc_id(d)}:{c[:60]}" for d, c in CASES])
def test_command_line_parses(doc, command):
    from lpq.cli import COMMANDS, compose

    args = shlex.split(command)
    tool = args.pop(0)
    if tool == "make":
        targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
        assert set(args) <= targets, f"make targets {set(args) - targets} are not in the Makefile"
        return
    if tool == "lpq":
        sub = args.pop(0)
        if sub == "compare":
            flags = {a for a in args if a.startswith("--")}
            assert flags <= COMPARE_FLAGS, flags
            return
        assert sub in COMMANDS, f"unknown lpq command {sub!r}"
        compose(_lpq_overrides(args))  # raises on unknown keys, bad groups or bad grammar
        return
    # snakemake: the profile folders exist, the --config grid composes
    for flag in ("--profile", "--workflow-profile"):
        if flag in args:
            value = args[args.index(flag) + 1]
            assert value == "none" or (ROOT / value).is_dir(), f"{flag} {value} does not exist"
    if "--config" not in args:
        return
    config = {}
    for item in args[args.index("--config") + 1:]:
        if item.startswith("-"):
            break
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    assert set(config) <= {"experiment", "overrides"}, config
    assert "all" not in config, "`all` must come before --config"
    from lpq.pipeline.grid import Grid

    grid = Grid(str(config.get("experiment", "paper")), [str(o) for o in config.get("overrides") or []])
    assert grid.models and grid.formats
