"""Parameter types shared by the commands."""

from __future__ import annotations

from datetime import date

import click


class DateType(click.ParamType):
    """A calendar day, YYYY-MM-DD."""

    name = "date"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date like 2026-11-01", param, ctx)


DATE = DateType()
