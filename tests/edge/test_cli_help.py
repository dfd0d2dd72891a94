"""Every option's default shows in --help (edge.cli_help), on both command lines."""

from __future__ import annotations

import argparse

import pytest

from edge.cli import main as edge_main
from edge.cli_help import show_defaults
from trainer.cli import main as train_main


def test_defaults_are_appended_once_and_only_where_there_is_one() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("go")
    sub.add_argument("--rate", type=float, default=0.5, help="how fast")
    sub.add_argument("--size", default=(128, 96), help="HxW")
    sub.add_argument("--name", help="who")  # no default
    sub.add_argument("--quiet", action="store_true", help="say less")  # False
    sub.add_argument("--mode", default="auto", help="how (default: auto, the best)")
    sub.add_argument("--share", default="5%", help="a percentage")
    sub.add_argument("--seed", type=int, default=0, help="draws")
    show_defaults(parser)
    helps = {a.dest: a.help for a in sub._actions}
    assert helps["rate"] == "how fast (default: 0.5)"
    assert helps["size"] == "HxW (default: 128x96)"
    assert helps["name"] == "who" and helps["quiet"] == "say less"
    assert helps["mode"] == "how (default: auto, the best)"
    assert helps["seed"] == "draws (default: 0)"
    assert "(default: 5%)" in sub.format_help()


@pytest.mark.parametrize(
    ("main", "command", "shown"),
    [
        (train_main, ["classify", "--help"], "(default: 0.9)"),
        (train_main, ["fit", "--help"], "(default: sigma:3)"),
        (edge_main, ["inspect", "--help"], "(default: 8)"),
    ],
)
def test_the_command_lines_show_them(
    main, command: list[str], shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(command)
    assert shown in " ".join(capsys.readouterr().out.split())
