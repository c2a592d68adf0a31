"""The errors a user can cause. The CLI prints them without a traceback and exits non-zero."""

import re

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colours (exporters colour their messages)


class OpbenchError(Exception):
    """Bad input: an unknown case, backend or option, a malformed result file. The message says what to do."""


class BackendUnavailable(OpbenchError):
    """A backend cannot run on this machine (missing package, wrong OS); the message says why."""


class BrokenCase(OpbenchError):
    """A case that cannot be built or run in eager PyTorch (its factory raises or returns no nn.Module, it rejects its
    input, it returns no tensor): the message names the case. In a run it is that case's failed result."""


class UnsupportedCase(Exception):
    """A backend cannot export or compile one case; carries the exporter's own message."""


def error_text(exc: BaseException) -> str:
    """'TypeName: message', the way a reason is recorded in a result or a cache entry."""
    return f"{type(exc).__name__}: {exc}".strip()


def first_line(text: str, limit: int = 300) -> str:
    """The first line of a message, without terminal colours, at most `limit` characters: where a reason must fit
    one line (a table cell, a one-line error), exporters' pages of traceback are cut to the line that says what."""
    lines = ANSI.sub("", text).strip().splitlines()
    return lines[0].strip()[:limit] if lines else ""


def error_line(exc: BaseException, limit: int = 300) -> str:
    """'TypeName: the first line of its message' (just 'TypeName' when it has none)."""
    message = first_line(str(exc), limit)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class ProfilerUnavailable(OpbenchError):
    """A backend cannot profile per operator here (no profiler, or one without usable operator rows); says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
