"""One root exception for the product; subclasses also inherit the builtin a caller would catch."""

from __future__ import annotations


class XsellError(Exception):
    """Root of every error the engine raises on purpose."""


class ConfigError(XsellError, ValueError):
    """A setting is missing, malformed or inconsistent."""


class ServiceUnavailableError(XsellError, ConnectionError):
    """Kafka or Redis cannot be reached or did not start."""
