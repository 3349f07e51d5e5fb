"""End-to-end tests of the receiver against real peers and the real brokers (see conftest)."""
