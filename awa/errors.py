"""Exception hierarchy shared by every layer of the package.

``ValidationError`` is both an ``AwaError`` and a ``ValueError`` so callers can
catch either the package's base error or the builtin they already expect for
bad input.
"""

from __future__ import annotations


class AwaError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(AwaError, ValueError):
    """Bad input. Raised before anything is written to the database."""


class DatabaseUnavailable(AwaError):
    """The database could not be reached; the message never contains a password."""


class MigrationError(AwaError):
    """A schema migration could not be applied."""


__all__ = ["AwaError", "ValidationError", "DatabaseUnavailable", "MigrationError"]
