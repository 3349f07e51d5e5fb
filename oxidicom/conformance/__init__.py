"""A property-based conformance fuzzer for the DICOM Upper Layer of any peer (PS3.8).

``oxidicom fuzz HOST PORT`` (or :func:`run`) plays hypothesis-generated and mutated PDU
sequences against a remote SCP, driven by oxidicom's own requestor state machine, and
reports each deviation from PS3.8 as a :class:`~oxidicom.conformance.report.Finding`: the
check and section it fails, what the standard requires, what the peer did, and the minimal
bytes that reproduce it. Needs hypothesis (``pip install 'oxidicom[fuzz]'``).

    from oxidicom.conformance import FuzzConfig, Target, run, render

    report = run(Target.resolve("127.0.0.1", 11112), FuzzConfig(seed=1, examples=20))
    print(render(report))

It only ever connects to the address it is given, and refuses non-loopback addresses
unless told the host is the operator's (``Target.resolve(..., allow_remote=True)``).
"""

from oxidicom.conformance.checks import CHECKS, Check, Severity
from oxidicom.conformance.engine import FuzzConfig, TargetUnusableError, replay, run
from oxidicom.conformance.report import Finding, Report, read_json, render, to_json, write_json
from oxidicom.conformance.target import Target, UnsafeTargetError

__all__ = [
    "CHECKS",
    "Check",
    "Finding",
    "FuzzConfig",
    "Report",
    "Severity",
    "Target",
    "TargetUnusableError",
    "UnsafeTargetError",
    "read_json",
    "render",
    "replay",
    "run",
    "to_json",
    "write_json",
]
