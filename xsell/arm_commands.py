"""`xsell bundles challenge|promote|report`: a challenger bundle beside the champion."""

from __future__ import annotations

import click
from rich.table import Table

from rules_store.errors import XsellError
from rules_store.settings import Settings
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.views.acceptance_view import arms_report
from xsell.bundle_commands import open_store
from xsell.console import out


@click.command("challenge")
@click.argument("version", required=False)
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of customers the challenger serves, chosen by a hash of the customer id.",
)
@click.option("--stop", is_flag=True, help="End the challenge: every customer gets the champion.")
@click.pass_obj
def challenge_cmd(settings: Settings, version: str | None, share: float, stop: bool) -> None:
    """Serve VERSION to a share of the customers beside the active bundle (the champion).

    A customer's arm is a hash of their id, so it does not change between workers, restarts
    or replays. Alerts carry `arm`; `xsell bundles report` compares the arms and
    `xsell bundles promote` makes the challenger the champion.
    """
    store = open_store(settings)
    if stop:
        ended = store.end_challenge()
        out.print(f"ended the challenge of {ended}" if ended else "there was no challenger")
        return
    if version is None:
        msg = "give the VERSION to challenge with (see `xsell bundles list`), or --stop"
        raise click.UsageError(msg)
    store.challenge(version, share)
    out.print(f"{version} challenges {store.active_version()} on {share:.0%} of customers")


@click.command("promote")
@click.pass_obj
def promote_cmd(settings: Settings) -> None:
    """Make the challenger the active bundle for every customer (`rollback` undoes it)."""
    version, previous = open_store(settings).promote()
    out.print(f"promoted {version}" + (f" (was {previous})" if previous else ""))


@click.command("report")
@click.option("--products", is_flag=True, help="Also one row per arm and product.")
@click.pass_obj
def report_cmd(settings: Settings, products: bool) -> None:
    """Per arm: alerts sent, outcomes, acceptance rate with its 95% interval, uplift.

    `acc / dec / ign` are the accepted (answered or converted), declined and ignored offers;
    `95% CI` the rate's 95% (Wilson) interval.

    The rate is accepted over settled offers (answered, converted within the attribution
    window, or ignored past it); offers still inside the window are counted as pending.
    """
    store = open_store(settings)
    champion = store.active_version()
    if champion is None:
        msg = "no bundle is active yet: publish one with `xsell publish DIR --activate`"
        raise XsellError(msg)
    challenge = store.challenger()
    counts = AcceptanceStore(store.client, settings.redis_key_prefix)
    reports = arms_report(
        champion, (challenge.version, challenge.share) if challenge else None, counts.read
    )
    for report in reports:
        table = Table(
            title=f"{report.arm} {report.version} ({report.share:.0%} of customers)",
            title_justify="left",
        )
        for column in (
            "product",
            "alerts",
            "pending",
            "acc / dec / ign",
            "rate",
            "95% CI",
            "uplift",
        ):
            table.add_column(
                column, justify="left" if column == "product" else "right", no_wrap=True
            )
        for line in [report.total, *(report.products if products else [])]:
            t, rate = line.tally, line.rate
            lift = report.uplift if line is report.total else None
            table.add_row(
                line.product,
                f"{t.sent:,}",
                f"{line.pending:,}",
                f"{t.accepted:,} / {t.declined:,} / {t.ignored:,}",
                "–" if rate.rate is None else f"{rate.rate:.1%}",
                "–" if rate.low is None or rate.high is None else f"{rate.low:.1%}–{rate.high:.1%}",
                "" if lift is None else f"{lift:+.1%}",
            )
        out.print(table)
    if challenge is None:
        out.print("no challenger: start one with `xsell bundles challenge VERSION --share 0.2`")


BUNDLE_COMMANDS = (challenge_cmd, promote_cmd, report_cmd)
