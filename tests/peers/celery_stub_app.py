"""A Celery app standing in for CUBE's workers: it only records what it is asked to do.

Run by a real ``celery worker`` process (see :mod:`tests.peers.celery_worker`); it takes
its broker and its record file from the environment. Every event is one JSON line:

* ``{"event": "ready"}`` once the worker consumes;
* ``{"event": "task", "id": ..., "kwargs": {...}}`` per ``register_pacs_series`` call;
* ``{"event": "failure", ...}`` when a task could not run (e.g. kwargs that do not fit
  CUBE's signature), so a test fails with the reason instead of timing out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from celery import Celery, current_task
from celery.signals import task_failure, task_rejected, task_unknown, worker_ready

BROKER_ENV = "OXIDICOM_TEST_CELERY_BROKER"
RECORDS_ENV = "OXIDICOM_TEST_CELERY_RECORDS"

app = Celery("cube_stub", broker=os.environ.get(BROKER_ENV, "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.update(
    worker_enable_remote_control=False,  # no pidbox queues left behind on the broker
    worker_send_task_events=False,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)


def _record(event: dict[str, Any]) -> None:
    line = json.dumps(event, ensure_ascii=False) + "\n"
    with Path(os.environ[RECORDS_ENV]).open("a", encoding="utf-8") as records:
        records.write(line)
        records.flush()


@app.task(name="pacsfiles.tasks.register_pacs_series")  # type: ignore[untyped-decorator]
def register_pacs_series(
    PatientID: str,
    StudyDate: str,
    StudyInstanceUID: str,
    SeriesInstanceUID: str,
    pacs_name: str,
    path: str,
    ndicom: int,
    PatientName: str | None = None,
    PatientBirthDate: str | None = None,
    PatientAge: int | None = None,
    PatientSex: str | None = None,
    AccessionNumber: str | None = None,
    Modality: str | None = None,
    ProtocolName: str | None = None,
    StudyDescription: str | None = None,
    SeriesDescription: str | None = None,
) -> None:
    """CUBE's signature (contract §5); records the call instead of touching a database."""
    kwargs = {
        "PatientID": PatientID,
        "StudyDate": StudyDate,
        "StudyInstanceUID": StudyInstanceUID,
        "SeriesInstanceUID": SeriesInstanceUID,
        "pacs_name": pacs_name,
        "path": path,
        "ndicom": ndicom,
        "PatientName": PatientName,
        "PatientBirthDate": PatientBirthDate,
        "PatientAge": PatientAge,
        "PatientSex": PatientSex,
        "AccessionNumber": AccessionNumber,
        "Modality": Modality,
        "ProtocolName": ProtocolName,
        "StudyDescription": StudyDescription,
        "SeriesDescription": SeriesDescription,
    }
    request = current_task.request
    _record(
        {
            "event": "task",
            "id": request.id,
            "kwargs": kwargs,
            "headers": {"origin": request.origin, "retries": request.retries},
            "delivery_info": {"routing_key": (request.delivery_info or {}).get("routing_key")},
        }
    )


@worker_ready.connect  # type: ignore[untyped-decorator]
def _on_ready(**_: Any) -> None:
    _record({"event": "ready"})


@task_failure.connect  # type: ignore[untyped-decorator]
def _on_failure(
    task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    _record({"event": "failure", "id": task_id, "error": repr(exception)})


@task_rejected.connect  # type: ignore[untyped-decorator]
def _on_rejected(message: Any = None, exc: BaseException | None = None, **_: Any) -> None:
    _record({"event": "failure", "id": None, "error": f"rejected: {exc!r}"})


@task_unknown.connect  # type: ignore[untyped-decorator]
def _on_unknown(name: str | None = None, id: str | None = None, **_: Any) -> None:
    _record({"event": "failure", "id": id, "error": f"unknown task {name!r}"})
