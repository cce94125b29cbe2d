"""Faust's web server without its own "/" and "/router" views."""

from __future__ import annotations

from faust.web import Web


def drop_default_views(web: Web) -> None:
    """Faust's own "/" (a status stub) and /router views would shadow the dashboard and
    show the group's layout to anyone; the API says what an operator needs instead.
    Faust has no public switch for them: they are taken out of its enabled blueprints."""
    web.blueprints._enabled = [
        (prefix, bp) for prefix, bp in web.blueprints._enabled if prefix not in ("", "/router")
    ]
