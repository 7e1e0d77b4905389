"""The ``denials`` command."""

from analytics.denials import register_cli

__all__ = ["register_cli"]
