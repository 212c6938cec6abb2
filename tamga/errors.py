"""Small typed errors. They carry a message meant for a person; the CLI and the UI show it."""

from __future__ import annotations


class TamgaError(Exception):
    """Base class of every error Tamga reports to a user."""


class SqlRefused(TamgaError):
    """A statement the guard will not run (not a single SELECT, or it touches files/network)."""


class SqlFailed(TamgaError):
    """A SELECT that DuckDB could not run (syntax, unknown column, type error...)."""


class SqlTimeout(SqlFailed):
    """A query stopped because it ran past the time limit."""


class ImportRejected(TamgaError):
    """An import file failed validation; nothing was written."""


class IngestError(TamgaError):
    """A document could not be read or indexed."""


class DatabaseMissing(TamgaError):
    """The trade database does not exist yet."""


class UnknownTrader(TamgaError):
    """No trader matches the name, TIN or ID given."""


class LLMUnavailable(TamgaError):
    """The configured language model endpoint is down, slow or answered nonsense."""


class AccessDenied(TamgaError):
    """Unknown user, wrong password, expired session, or a role that may not do this."""


class DocumentRefused(TamgaError):
    """A document Tamga will not read: wrong type, empty, encrypted, too large, unreadable."""


class DeclarationNotFound(TamgaError):
    """No declaration matches (or the one named is not in the user's offices)."""


class BackendUnavailable(TamgaError):
    """The configured query engine cannot be used (package missing, server down, no export)."""


class ExportRefused(TamgaError):
    """An export would overwrite or mix with files it did not write; nothing was written."""
