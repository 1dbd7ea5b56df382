"""Fails to import: a dependency that is not installed."""

import not_an_installed_dependency  # noqa: F401
