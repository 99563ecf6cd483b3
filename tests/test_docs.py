"""The documentation keeps up with the code: every command has help and a README entry,
and CI runs the README's test command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from conftest import ROOT, run_module
from sibila_sqlmig.cli import build_parser

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_help_and_a_readme_row() -> None:
    commands = _commands()
    assert set(commands) == {"status", "migrate", "rollback", "create", "verify", "baseline",
                             "repair", "history", "diff", "restore", "lint", "check", "dump"}
    for name, sub in commands.items():
        assert sub.description, name
        assert re.search(rf"^\| `{name}\b", README, re.M), f"README lacks a row for {name}"
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"


def test_every_option_is_documented() -> None:
    for name, sub in _commands().items():
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in README, f"README does not mention {name} {option}"


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_command = next(block for block in blocks if "pytest" in block)
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_help_and_version_work_without_a_database(tmp_path) -> None:
    helped = run_module("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "migrate" in helped.stdout
    version = run_module("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("sibila-sqlmig ")


def test_public_names_resolve() -> None:
    import sibila_sqlmig

    for name in sibila_sqlmig.__all__:
        assert getattr(sibila_sqlmig, name) is not None


def test_type_checkers_see_the_same_public_names_from_the_same_modules() -> None:
    """The lazy export table and the block that type checkers read say the same."""
    import ast

    import sibila_sqlmig

    tree = ast.parse(Path(sibila_sqlmig.__file__).read_text(encoding="utf-8"))
    static = {alias.asname: node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.level == 1
              for alias in node.names if alias.asname}
    assert static == sibila_sqlmig._EXPORTS


def test_cli_exit_codes_match_the_errors_module() -> None:
    from sibila_sqlmig import cli, errors

    assert (cli.EXIT_OK, cli.EXIT_FAILED) == (errors.EXIT_OK, errors.EXIT_FAILED)


def test_the_readme_lists_every_lint_rule() -> None:
    from sibila_sqlmig.lint import RULES

    for rule, spec in RULES.items():
        row = re.search(rf"^\| [^|]*`{rule}`[^|]* \| (\w+) \|", README, re.M)
        assert row is not None, f"README lacks the lint rule {rule}"
        assert row.group(1) == spec.level, rule
