"""`lpq <command> --help` / `-h`: usage, inputs and outputs, every config key of the command with its default and
a description taken from conf/ (so the help cannot drift), examples that parse; `lpq --help` lists the commands."""
from __future__ import annotations

import re
import shutil

import pytest

from lpq.cli import COMMANDS, compose, main
from lpq.cli.help import COMMANDS_HELP

KEY_LINE = re.compile(r"^  ([a-z_]+)\.([a-z_]+) = (.*?)(?:    # (.*))?$")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help(capsys, command, flag):
    assert main([command, flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lpq {command} ")
    assert "reads:" in out and "writes:" in out and "examples:" in out
    keys = [KEY_LINE.match(line) for line in out.splitlines() if KEY_LINE.match(line)]
    groups = {m.group(1) for m in keys}
    assert groups == set(COMMANDS_HELP[command].groups)
    undocumented = [f"{m.group(1)}.{m.group(2)}" for m in keys if not m.group(4)]
    assert not undocumented, f"keys without a `# description` in conf/: {undocumented}"
    cfg = compose(["out_dir=x"])
    for m in keys:  # every key shown is a key of the composed config, with its default
        assert m.group(2) in cfg[m.group(1)], m.group(0)


@pytest.mark.parametrize("group,command", [("model", "evaluate"), ("data", "evaluate"), ("search", "search"),
                                           ("hw", "hwsim")])
def test_every_option_documents_its_keys(group, command):
    from lpq.cli import conf_dir
    from lpq.cli.help import group_options, render

    conf = conf_dir()
    for option in group_options(conf, group):
        overrides = [f"{group}={option}"]
        out = render(command, conf, compose(overrides), overrides)
        missing = [f"{m.group(1)}.{m.group(2)}" for m in map(KEY_LINE.match, out.splitlines())
                   if m and m.group(1) == group and not m.group(4)]
        assert not missing, (option, missing)


def test_defaults_shown_are_the_configs(capsys):
    assert main(["search", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  search.population = 8    # GA population size P" in out
    assert "  calib.num_samples = 256    # images drawn without replacement" in out
    assert "  search.bits = [2,3,4,5,6,8]" in out
    assert "model= (default digits_cnn; options: " in out and "cifar_resnet32" in out


def test_overrides_before_help_select_groups(capsys):
    assert main(["evaluate", "model=cifar_resnet44", "data=cifar10", "eval.batch_size=7", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  model.depth = 44" in out and "  data.root = ???    # CIFAR-10 folder" in out
    assert "  eval.batch_size = 7" in out


def test_help_follows_conf(tmp_path, monkeypatch, capsys):
    """Generated from conf/: a changed default and comment show up without touching the code."""
    from lpq.cli import conf_dir

    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    text = (conf / "eval" / "default.yaml").read_text().replace("batch_size: 64", "batch_size: 99")
    (conf / "eval" / "default.yaml").write_text(text.replace("# validation batch size", "# a new description"))
    monkeypatch.setenv("LPQ_CONF_DIR", str(conf))
    assert main(["evaluate", "--help"]) == 0
    assert "  eval.batch_size = 99    # a new description" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_examples_parse(command):
    """Every example composes (Hydra grammar and keys), out_dir given."""
    from lpq.cli import quote_spec_overrides  # noqa: F401  (compose quotes spec strings itself)

    for example in COMMANDS_HELP[command].examples:
        words = example.split()
        assert words[:2] == ["lpq", command]
        overrides = [w.strip("'") if w.count("'") == 2 and w.startswith("'") else w.replace("'", "") for w in words[2:]]
        cfg = compose(overrides)
        assert cfg.out_dir


def test_top_level_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in (*COMMANDS, "compare"):
        assert re.search(rf"^  {command}\s+\S", out, re.M), command
    assert "lpq <command> --help" in out


def test_unknown_key_still_refused(capsys):
    assert main(["search", "search.populaton=3", "--help"]) == 2
    assert "bad overrides" in capsys.readouterr().err
    assert main(["search", "search.populaton=3", "out_dir=x"]) == 2
