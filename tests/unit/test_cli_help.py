from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from xsell.cli import cli


def _commands() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    for name, command in cli.commands.items():
        paths.append([name])
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in command.commands)
    return paths


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "xsell")
def test_every_command_explains_itself_with_help(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help, f"`xsell {' '.join(path)}` has no description"
    first_line = " ".join(command.help.splitlines()[0].split())
    assert first_line in " ".join(result.output.split())  # click re-wraps the text


@pytest.mark.parametrize("name", ["up", "doctor"])
def test_service_commands_list_the_addresses_they_read(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert "XSELL_KAFKA_BROKERS" in result.output


def test_invalid_configuration_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_TOPIC_PARTITIONS", "many")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code != 0
    assert "XSELL_TOPIC_PARTITIONS" in str(result.exception)
