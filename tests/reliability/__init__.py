"""Reliability and security: hostile input, faults, limits and access control, each against
the real receiver process (``python -m oxidicom``) and real peers."""
