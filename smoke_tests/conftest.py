"""Smoke tests run offline: against the mock and the bundled fake servers."""
