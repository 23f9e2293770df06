"""The Optuna storage a study lives in: opening it (one line when unreachable), and showing it without
credentials or local paths."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial: the sweep prints its own
    # heartbeats and fail_stale_trials are marked experimental; they are the library's answer to dead workers
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def display_url(url: str) -> str:
    """The store as MLflow and messages show it: no credentials, no local path."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return url.split("://")[0] + "://..."
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{Path(parsed.database or '').name}"
    return f"{parsed.get_backend_name()}://{parsed.host or ''}{f':{parsed.port}' if parsed.port else ''}/{parsed.database or ''}"


def open_storage(url: str, heartbeat_seconds: int | None = None, on_stale: Callable[[Any, Any], None] | None = None) -> Any:
    """Connect to the study store (creating Optuna's tables on first use); unreachable -> one line, at once."""
    import optuna
    from sqlalchemy import exc

    quiet_optuna()
    # psycopg waits ~2 min for an unreachable host by default: 10 s tells a dead server from a slow one
    engine = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    attempt = 0
    while True:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_seconds,
                                              heartbeat_stale_trial_callback=on_stale)
        except (exc.IntegrityError, exc.ProgrammingError):
            # workers started together on an empty database race to create Optuna's tables; the loser retries
            attempt += 1
            if attempt == 5:
                raise
            time.sleep(attempt)
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise PipelineError(f"sweep storage {display_url(url)} is unreachable ({type(error).__name__}: "
                                f"{reason[:200]})") from None
