"""Test support for code built on oxidicom: hypothesis strategies for the DICOM Upper Layer,
a blocking SCU that drives the wire exactly (:mod:`oxidicom.testing.scu`), and an in-memory
transport for the server's protocol object (:mod:`oxidicom.testing.transport`).

:mod:`oxidicom.testing.strategies` needs `hypothesis <https://hypothesis.readthedocs.io>`_,
which is not a runtime dependency of oxidicom: install ``oxidicom[fuzz]`` (or ``hypothesis``)
to use it. Importing this package itself, or :mod:`oxidicom.testing.scu`, needs nothing.
"""
