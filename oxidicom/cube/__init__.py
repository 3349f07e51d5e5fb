"""Everything that tells CUBE about received data (contract §4 and §5).

- :mod:`~oxidicom.cube.notifier`: :class:`CubeNotifier`, the storage observer that drives
  the rest;
- :mod:`~oxidicom.cube.lonk` and :mod:`~oxidicom.cube.progress`: progress messages and
  their rate rules; :mod:`~oxidicom.cube.nats_publisher` sends them, best effort;
- :mod:`~oxidicom.cube.celery_message`: the ``register_pacs_series`` task message;
  :mod:`~oxidicom.cube.outbox` keeps it on disk until
  :mod:`~oxidicom.cube.amqp_publisher` has it confirmed by RabbitMQ.

Submodules are imported explicitly, so that the pure ones do not pull in the AMQP and
NATS clients.
"""
