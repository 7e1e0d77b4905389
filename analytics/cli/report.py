"""The ``report`` command."""

from analytics.reports import register_cli

__all__ = ["register_cli"]
