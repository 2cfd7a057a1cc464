"""Shared helpers and data for the JSON Schema front-end tests (tests/test_schema_*.py)."""
