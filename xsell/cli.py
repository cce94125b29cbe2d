"""The `xsell` command line. Settings are read once here, from `XSELL_*` variables."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from rich.table import Table

from rules_store.errors import ConfigError, XsellError
from rules_store.settings import Settings, load_settings
from streams.kafka.clients import ensure_topics
from streams.kafka.topics import TopicNames
from xsell import (
    __version__,
    arm_commands,
    bundle_commands,
    corporate_commands,
    event_commands,
    retail_commands,
    stream_commands,
)
from xsell.console import err, out
from xsell.demo_command import demo_cmd
from xsell.doctor import DoctorReport, run_doctor, wait_for_healthy
from xsell.embedded import EmbeddedStack, resolve_endpoints
from xsell.evaluate_command import evaluate_cmd
from xsell.logs import configure_logging
from xsell.options import json_option, wait_option
from xsell.outcome_command import outcome_cmd
from xsell.runfile import read_run_file
from xsell.tail_command import tail_cmd
from xsell.worker_command import worker_cmd

_ENV_HELP = """
\b
Configuration comes from environment variables (see the README for all):
  XSELL_KAFKA_BROKERS   host:port[,...] of Kafka; unset = embedded broker
  XSELL_REDIS_URL       redis://host:port/db; unset = embedded Redis
  XSELL_STATE_DIR       where run files, logs and worker state go
  XSELL_LOG_LEVEL       DEBUG, INFO, WARNING, ERROR
"""

_STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


@click.group(epilog=_ENV_HELP)
@click.version_option(__version__, prog_name="xsell")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Real-time cross-sell and churn engine for banks.

    Offline training publishes per-segment rules and models to Redis; stream workers
    turn core-banking events into cross-sell and churn alerts on Kafka.
    """
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_on(_signum: int, _frame: FrameType | None) -> NoReturn:
    """Ctrl-C, SIGTERM and SIGHUP all stop the stack; further ones are ignored, so that a
    second Ctrl-C cannot interrupt the shutdown half-way."""
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt


@cli.command(epilog=_ENV_HELP)
@click.option(
    "--ready-timeout",
    default=30.0,
    show_default=True,
    help="Seconds to wait for each service to answer before giving up.",
)
@click.pass_obj
def up(settings: Settings, ready_timeout: float) -> None:
    """Start the embedded Kafka-compatible broker and Redis in the foreground.

    Each runs as a child process on a free loopback port and is stopped on Ctrl-C,
    SIGTERM or when this process dies. The addresses go into a run file, so `xsell`
    commands in other terminals use this stack. Services already configured through
    XSELL_KAFKA_BROKERS or XSELL_REDIS_URL are not started. A Redis that dies is
    restarted on the same port with its keys (up to 5 times in 10 minutes); a broker
    that dies stops the stack.
    """
    if settings.kafka_brokers and settings.redis_url:
        msg = (
            "nothing to start: XSELL_KAFKA_BROKERS and XSELL_REDIS_URL are both set. "
            "Run `xsell doctor` to check them, or unset them to use the embedded stack."
        )
        raise ConfigError(msg)
    running = read_run_file(settings.run_file)
    if running is not None:
        msg = (
            f"an embedded stack is already running (pid {running.pid}: broker "
            f"{running.kafka_bootstrap}, Redis {running.redis_url}). Use it as it is, or stop "
            f"it with Ctrl-C in its terminal or `kill {running.pid}`."
        )
        raise XsellError(msg)
    # Explicit handlers: a shell starts background jobs with SIGINT ignored.
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _stop_on)
    stack = EmbeddedStack(settings, ready_timeout_s=ready_timeout)
    try:
        stack.start()
        created = ensure_topics(settings, stack.endpoints, TopicNames(settings.topic_prefix).all())
        _print_stack(stack, created)
        while (broker := stack.supervise()) is None:
            time.sleep(0.2)
        msg = (
            f"embedded {broker.name} exited with code {broker.exit_code()}; stopping "
            "(its topics were in its memory: start `xsell up` again, then the workers, and "
            f"reload the snapshot). Last lines of {broker.log_path}:\n{broker.log_tail()}"
        )
        raise XsellError(msg)
    except KeyboardInterrupt:
        pass
    finally:
        for signum in _STOP_SIGNALS:  # nothing may interrupt the shutdown itself
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()
    err.print("embedded stack stopped")


def _print_stack(stack: EmbeddedStack, created: list[str]) -> None:
    table = Table(title="xsell embedded stack", title_justify="left")
    for column in ("service", "address", "pid", "ready in"):
        table.add_column(column)
    endpoints = stack.endpoints
    for child, address in (
        (stack.broker, endpoints.kafka_bootstrap),
        (stack.redis, endpoints.redis_url),
    ):
        if child is not None:
            table.add_row(
                child.name, address, str(child.pid), f"{stack.ready_seconds[child.name]:.2f} s"
            )
    out.print(table)
    if created:
        out.print(f"created topics: {', '.join(created)}")
    out.print(f"run file: {stack.settings.run_file}")
    out.print("Other `xsell` commands now use this stack. Press Ctrl-C to stop it.")


@cli.command()
@click.argument("service", type=click.Choice(["kafka", "redis"]))
@click.pass_obj
def address(settings: Settings, service: str) -> None:
    """Print the broker's or Redis's address, for other tools (kcat, redis-cli).

    \b
    kcat -b "$(xsell address kafka)" -L
    """
    endpoints = resolve_endpoints(settings, need_kafka=service == "kafka")
    click.echo(endpoints.kafka_bootstrap if service == "kafka" else endpoints.redis_url)


@cli.command(epilog=_ENV_HELP)
@wait_option("until every check passes, re-checking.", default=0.0)
@click.option(
    "--timeout", "timeout_s", default=5.0, show_default=True, help="Per-request timeout, seconds."
)
@json_option
@click.pass_obj
def doctor(settings: Settings, wait_s: float, timeout_s: float, as_json: bool) -> None:
    """Check the configured (or embedded) broker and Redis; list topics and versions.

    Exits with status 1 and the reason when something is wrong.
    """
    report = (
        wait_for_healthy(settings, wait_s=wait_s, timeout_s=timeout_s)
        if wait_s > 0
        else run_doctor(settings, timeout_s=timeout_s)
    )
    if as_json:
        click.echo(json.dumps(_report_dict(report), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        sys.exit(1)


def _report_dict(report: DoctorReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "checks": [asdict(check) for check in report.checks],
        "endpoints": _plain(asdict(report.endpoints)) if report.endpoints else None,
        "topics": report.broker.topics if report.broker else None,
        "versions": report.versions,
    }


def _plain(fields: dict[str, object]) -> dict[str, object]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}


def _print_report(report: DoctorReport) -> None:
    checks = Table(title="checks", title_justify="left")
    checks.add_column("check")
    checks.add_column("status")
    checks.add_column("detail", overflow="fold")
    for check in report.checks:
        checks.add_row(check.name, _STATUS_STYLE[check.status], check.detail)
    out.print(checks)
    if report.broker and report.broker.topics:
        topics = Table(title="topics", title_justify="left")
        topics.add_column("topic")
        topics.add_column("partitions", justify="right")
        for name, partitions in sorted(report.broker.topics.items()):
            topics.add_row(name, str(partitions))
        out.print(topics)
    versions = Table(title="versions", title_justify="left")
    versions.add_column("component")
    versions.add_column("version")
    for name, value in report.versions.items():
        versions.add_row(name, value)
    out.print(versions)
    out.print(
        "[green]healthy[/]" if report.ok else "[red]unhealthy[/]: see the failed checks above"
    )


for _command in (
    *retail_commands.COMMANDS,
    evaluate_cmd,
    *corporate_commands.COMMANDS,
    *bundle_commands.COMMANDS,
    *stream_commands.COMMANDS,
    worker_cmd,
    outcome_cmd,
    tail_cmd,
    demo_cmd,
):
    cli.add_command(_command)
retail_commands.generate.add_command(event_commands.generate_events_cmd)
for _command in arm_commands.BUNDLE_COMMANDS:
    bundle_commands.bundles.add_command(_command)
for _command in corporate_commands.GENERATE_COMMANDS:
    retail_commands.generate.add_command(_command)
for _command in corporate_commands.TRAIN_COMMANDS:
    retail_commands.train.add_command(_command)


def main(args: list[str] | None = None) -> None:
    """Console-script entry point: library errors become one readable line, not a traceback."""
    try:
        cli(args=args, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}", highlight=False)
        sys.exit(2)
    except XsellError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except OSError as exc:  # e.g. an output path that cannot be written
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
