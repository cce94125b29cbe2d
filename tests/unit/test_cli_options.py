"""One meaning per option name: `--rate` cannot be a replay speed in one command and a
generation density in another."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import click

from xsell.cli import cli


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def _uses() -> dict[str, list[tuple[str, click.Option]]]:
    """Option name (`--rate`, `-n`) -> (command path, option) for every command using it."""
    uses: dict[str, list[tuple[str, click.Option]]] = defaultdict(list)
    for path, command in _commands(cli, "xsell"):
        for param in command.params:
            if isinstance(param, click.Option):
                for name in (*param.opts, *param.secondary_opts):
                    uses[name].append((path, param))
    return {name: found for name, found in uses.items() if len(found) > 1}


def _meaning(option: click.Option) -> tuple[str, str]:
    """What a user reads the option as: the shared meaning (or the whole help) and the kind
    of value. A command may choose the default and the bounds, not these (nor whether its
    `--out` is a file or a directory: the metavar says which)."""
    return getattr(option, "meaning", option.help or ""), type(option.type).__name__


def test_an_option_name_has_one_meaning_and_kind_of_value_in_every_command() -> None:
    clashes = {
        name: {path: _meaning(option) for path, option in found}
        for name, found in _uses().items()
        if len({_meaning(option) for _, option in found}) > 1
    }
    assert not clashes, f"option names with several meanings: {clashes}"


def test_an_option_taken_by_several_commands_is_declared_once_in_xsell_options() -> None:
    elsewhere = {
        name: [path for path, option in found if type(option).__module__ != "xsell.options"]
        for name, found in _uses().items()
    }
    assert not {name: paths for name, paths in elsewhere.items() if paths}
    assert all(option.help for found in _uses().values() for _, option in found)


def test_rate_is_a_replay_speed_and_generation_density_has_its_own_name() -> None:
    generate_events = cli.commands["generate"].commands["events"]  # type: ignore[attr-defined]
    names = {name for param in generate_events.params for name in getattr(param, "opts", ())}
    assert "--rate" not in names
    assert "--events-per-day" in names
    for path in (["replay"], ["demo"]):
        help_text = cli.commands[path[0]].get_help(click.Context(cli.commands[path[0]]))
        assert "events per second" in " ".join(help_text.split())
