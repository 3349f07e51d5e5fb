"""Suite-wide fixtures: the real peers (DCMTK, Orthanc, pynetdicom, a Celery worker) and the
brokers on loopback. Each test picks unique names, so runs never see each other's messages."""

from __future__ import annotations

pytest_plugins = (
    "tests.peers.ports",
    "tests.peers.dcmtk",
    "tests.peers.orthanc",
    "tests.peers.pynetdicom_peer",
    "tests.peers.celery_worker",
    "tests.peers.oxidicom_receiver",
)
