"""The ``evaluate`` command."""

from analytics.pipeline import register_cli

__all__ = ["register_cli"]
