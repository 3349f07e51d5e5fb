"""Test support for code built on oxidicom: hypothesis strategies for the DICOM Upper Layer.

:mod:`oxidicom.testing.strategies` needs `hypothesis <https://hypothesis.readthedocs.io>`_,
which is not a runtime dependency of oxidicom: install ``oxidicom[fuzz]`` (or ``hypothesis``)
to use it. Importing this package itself needs nothing.
"""
