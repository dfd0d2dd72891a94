"""The command lines' help shows every option's default."""

from __future__ import annotations

import argparse


def show_defaults(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Append "(default: X)" to the help of each option of `parser` and of its sub-commands
    that has a default (not None, not False) its help does not already state; a tuple default
    (a size) reads "128x128". Returns `parser`."""
    for action in parser._actions:  # argparse has no public walk over its actions
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                show_defaults(sub)
            continue
        default = action.default
        if (
            not action.option_strings
            or action.help in (None, argparse.SUPPRESS)
            or default is None
            or default is False  # a flag; 0 is a default to show (0 == False, so `is`)
            or default == argparse.SUPPRESS
            or "default" in action.help
        ):
            continue
        shown = "x".join(map(str, default)) if isinstance(default, tuple) else str(default)
        action.help = f"{action.help} (default: {shown.replace('%', '%%')})"
    return parser
