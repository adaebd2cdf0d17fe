"""``lbaas <command> --help``: each command lists only its own options, and every option
says what it is and what its default is."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lbaas.main.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) \
        -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_every_option_has_help_with_its_default(command: tuple[str, ...]) -> None:
    for action in COMMANDS[command]._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"lbaas {' '.join(command)} {action.option_strings[0]}: no help"
        text = action.help % {"default": action.default}
        assert "default" in text or "required" in text, \
            f"lbaas {' '.join(command)} {action.option_strings[0]}: no default in {text!r}"


def _options(*command: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "lbaas.main.cli", *command, "--help"],
                         capture_output=True, text=True, check=True).stdout
    return {word.rstrip(",") for line in out.splitlines() for word in line.split()
            if word.startswith("--")}


def test_teardown_help_lists_only_its_own_options() -> None:
    assert _options("teardown") == {"--help", "--config", "--data-dir", "--log-level"}


def test_data_dir_default_is_dot_data_in_the_current_directory() -> None:
    out = subprocess.run([sys.executable, "-m", "lbaas.main.cli", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert ".data in the current directory" in " ".join(out.split())
