"""The one exception type users see, and the wrapper that turns it into a one-line exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class PipelineError(Exception):
    """A user-fixable problem (bad params, malformed data, unreachable service), phrased as one line
    that names the file and the row / key at fault."""


def cli(main: F) -> F:
    """Wrap a stage's main(): a PipelineError prints `error: <line>` to stderr and exits with status 2,
    so DVC shows the cause instead of a traceback wall. Anything else is a bug and keeps its traceback.
    Without a terminal, progress bars are turned off."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not sys.stderr.isatty():
            # Captured output (DVC's logs, CI): no progress bars (model loading, saving, widget examples),
            # which would print as lines of carriage returns; training reports in lines of its own instead.
            os.environ.setdefault("TQDM_DISABLE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            return main(*args, **kwargs)
        except PipelineError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
