"""Exception types that the command line turns into one-line messages.

Library code raises a subclass of :class:`PmseError` for every problem a user can
fix (bad input file, invalid configuration, impossible request). The CLI prints
the message and exits with status 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class PmseError(Exception):
    """Base class for user-facing errors of pmse-graph."""


class ConfigError(PmseError, ValueError):
    """An invalid configuration file or option value."""


class DataError(PmseError):
    """An input file that cannot be read, or data that violate the schema."""


class MissingDependencyError(PmseError, ImportError):
    """An optional dependency that the requested feature needs is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        install = f"pip install 'pmse-graph[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the optional package '{package}', which is not installed. Install it with: {install}")
        self.package = package
