"""The version of restate-pg, here so that any layer can name it without importing the whole package."""

#: Also in pyproject.toml; tests/test_packaging.py checks that the two agree.
VERSION = "0.2.0"
