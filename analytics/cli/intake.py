"""The ``intake`` command."""

from analytics.intake import register_cli

__all__ = ["register_cli"]
