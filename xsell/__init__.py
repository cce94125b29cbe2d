"""Composition root: the `xsell` command line and the embedded runtime it can start."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xsell")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
