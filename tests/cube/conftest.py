"""Shared fixtures of the CUBE notifier tests: the brokers on loopback and a stub worker."""

from __future__ import annotations

import uuid

import pytest

__all__ = ["amqp_url", "nats_address", "unique"]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
NATS_ADDRESS = "127.0.0.1:4222"


@pytest.fixture
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture
def nats_address() -> str:
    return NATS_ADDRESS


@pytest.fixture
def unique() -> str:
    """A token no other test (or concurrent run) uses: for AE titles, subjects, queues."""
    return uuid.uuid4().hex[:10].upper()
