"""Training metrics that survive an outage of the tracking server.

transformers' MLflow callback logs each step's loss and each validation score as it comes; when a tracking
server is down for a minute, MLflow's asynchronous logger prints an error and drops them, and synchronous
logging would stop the training. Here each logged value is stamped (step, wall time) and queued; a background
thread sends the queue with `log_batch` and, when the server does not answer (after MLflow's own HTTP retries,
which back off exponentially over about two minutes), keeps every value and tries again every RETRY_SECONDS.
Training never waits for it. When training ends, the stage waits for the queue
to empty (at most OUTAGE_MINUTES, from the environment: an operational setting, which params.yaml would
make part of every cell's identity) before it logs the rest and ends the run, and says how many values went
late and for how long the server was away. Values carry their own timestamp, so a batch sent
twice (the server stored it, the answer was lost) stores nothing twice.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from pipeline.core.errors import PipelineError

RETRY_SECONDS = 5.0
SLOW_SECONDS = 5.0  # a request answered only after MLflow's own HTTP retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES)
OUTAGE_MINUTES = "PIPELINE_MLFLOW_OUTAGE_MINUTES"  # how long the end of training waits for the server; default 10
FAILED_WAIT_SECONDS = 15.0  # a failed or interrupted stage sends what it logged for at most this long
BATCH = 1000  # MLflow's limit of metrics per log_batch request


class MetricOutbox:
    def __init__(self, run_id: str, label: str, tracking_uri: str | None = None) -> None:
        import mlflow

        outage_minutes()  # a malformed setting stops the stage now, not after the training
        self._client, self._run_id, self._label = mlflow.MlflowClient(tracking_uri), run_id, label
        self._pending: list[Any] = []
        self._ready = threading.Condition()
        self._closing = False
        self.down_since: float | None = None
        self.outage_seconds = 0.0
        self.sent_late = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._send, name="mlflow-outbox", daemon=True)
        self._thread.start()

    def add(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with self._ready:
            self._pending += [Metric(key, float(value), now, step) for key, value in metrics.items()]
            self._ready.notify()

    def _send(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                batch = self._pending[:BATCH]
            started = time.monotonic()
            try:
                self._client.log_batch(self._run_id, metrics=batch)
            except Exception as error:  # noqa: BLE001 - any failure to reach the store: keep the values, retry
                if self.down_since is None:
                    self.down_since = started
                    print(f"train {self._label}: the tracking server does not answer ({_short(error)}); keeping the "
                          f"metrics and trying again every {RETRY_SECONDS:.0f} s", flush=True)
                self.last_error = _short(error)
                time.sleep(RETRY_SECONDS)
                continue
            with self._ready:
                del self._pending[:len(batch)]
            if self.down_since is None and time.monotonic() - started > SLOW_SECONDS:
                self.down_since = started  # away, but back within MLflow's own HTTP retries of this request
            if self.down_since is not None:
                self.sent_late += len(batch)
                if not self._pending:
                    self.outage_seconds += time.monotonic() - self.down_since
                    self.down_since = None
                    print(f"train {self._label}: the tracking server answers again; {self.sent_late} metric values "
                          f"sent late", flush=True)

    def __enter__(self) -> MetricOutbox:
        return self

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is not None and self._thread.is_alive():  # failed or interrupted: send what was logged, briefly
            with self._ready:
                self._closing = True
                self._ready.notify()
            self._thread.join(FAILED_WAIT_SECONDS)

    def close(self) -> str | None:
        """Wait (at most OUTAGE_MINUTES) until every value is sent; a sentence for the stage's summary when some
        went late; one line naming what is lost when the server stays away."""
        minutes = outage_minutes()
        with self._ready:
            self._closing = True
            self._ready.notify()
            waiting = len(self._pending)
        if self.down_since is not None:
            print(f"train {self._label}: waiting up to {minutes:g} min for the tracking server to send {waiting} "
                  f"metric values", flush=True)
        self._thread.join(minutes * 60)
        if self._thread.is_alive():
            raise PipelineError(f"train {self._label}: the tracking server has not answered for "
                                f"{time.monotonic() - (self.down_since or time.monotonic()):.0f} s ({self.last_error}); "
                                f"{len(self._pending)} metric values of run {self._run_id} were not sent and the trained "
                                f"model is not kept: bring the server back and run the stage again ({OUTAGE_MINUTES} "
                                f"sets the wait)")
        if not self.sent_late:
            return None
        return f"{self.sent_late} MLflow metric values sent late (tracking server away {self.outage_seconds:.0f} s)"


def outage_minutes() -> float:
    import os

    value = os.environ.get(OUTAGE_MINUTES, "10")
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not minutes >= 0:
        raise PipelineError(f"{OUTAGE_MINUTES}={value!r}: expected minutes, a number >= 0")
    return minutes


def _short(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]


def attach(trainer: Any, run_id: str, label: str) -> MetricOutbox:
    """Replace the trainer's MLflow callback by one that queues each log's metrics in a new outbox."""
    from transformers.integrations import MLflowCallback

    outbox = MetricOutbox(run_id, label)
    trainer.remove_callback(MLflowCallback)
    trainer.add_callback(_outbox_callback(outbox))
    return outbox


def mlflow_name(key: str) -> str:
    """A trainer log key as transformers' own MLflow callback logs it (characters MLflow rejects, "@" among
    them, replaced)."""
    return re.sub(r"[^0-9A-Za-z_\-\.\ :/]", "_", key)


def _outbox_callback(outbox: MetricOutbox) -> Any:
    """transformers' MLflow callback (params at the start, run handling), with each log's metrics queued in
    `outbox` instead of sent on the spot."""
    import torch
    from transformers.integrations import MLflowCallback

    class OutboxMLflowCallback(MLflowCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any], model: Any = None, **kwargs: Any
                   ) -> None:
            if not self._initialized:
                self.setup(args, state, model)
            if not state.is_world_process_zero:
                return
            metrics = {key: value.item() if isinstance(value, torch.Tensor) else value for key, value in logs.items()
                       if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1)}
            outbox.add({mlflow_name(key): value for key, value in metrics.items()}, state.global_step)

    return OutboxMLflowCallback()
