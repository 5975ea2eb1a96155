"""Shared test support: builders, fakes and helpers (fixtures live in tests/conftest.py)."""
