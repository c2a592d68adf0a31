"""The errors a user can cause. The CLI prints them without a traceback and exits non-zero."""


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


def first_line(exc: BaseException) -> str:
    """'TypeName: the first line of the message': a reason that fits on one line (tracebacks and exporters' messages
    run to many)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class ProfilerUnavailable(OpbenchError):
    """A backend cannot profile per operator here (no profiler, or one without usable operator rows); says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
