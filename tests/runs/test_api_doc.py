"""docs/api.md's example script runs as written (so the documented Python API cannot drift), and the command
modules stay thin: no lpq/cli command module imports another lpq.cli module."""
from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks(doc: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)


@pytest.mark.slow
def test_api_doc_example_runs(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks(ROOT / "docs" / "api.md")
    assert len(blocks) == 1, "docs/api.md should hold exactly one runnable example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    values = {m[0]: float(m[1]) for m in re.findall(r"^(FP32|uniform LP4|LPQ-LP) ([\d.]+)", out, flags=re.M)}
    assert set(values) == {"FP32", "uniform LP4", "LPQ-LP"}, out
    assert values["FP32"] > 90 and 0 < values["uniform LP4"] <= 100 and 0 < values["LPQ-LP"] <= 100
    qc = tmp_path / "runs" / "api-cnn" / "qconfig.json"
    assert qc.is_file()

    from lpq.quant.qconfig import QConfig

    loaded = QConfig.load(qc)
    assert loaded.layers and all(e.w for e in loaded.layers.values())


def test_api_doc_names_exist():
    """Every `lpq.x.y.name` the API table documents is importable."""
    import importlib

    text = (ROOT / "docs" / "api.md").read_text()
    names = set(re.findall(r"`(lpq(?:\.\w+)+)(?:\(|`)", text))
    assert len(names) >= 8
    for dotted in sorted(names):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                if attr == "run_<command>" or "<" in attr:
                    break
                obj = getattr(obj, attr)
            break
        else:
            pytest.fail(f"docs/api.md names {dotted}, which does not import")


def test_cli_command_modules_do_not_import_each_other():
    cli = ROOT / "lpq" / "cli"
    offenders = []
    for path in sorted(cli.glob("*.py")):
        if path.name == "__init__.py":  # the dispatcher imports the command modules by name
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if (node.level == 1) or (node.level == 0 and mod.startswith("lpq.cli")) or \
                        (node.level == 2 and mod.startswith("cli")):
                    offenders.append(f"{path.name}: from {'.' * node.level}{mod} import ...")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("lpq.cli")]
    assert not offenders, offenders
