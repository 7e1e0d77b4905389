"""The ``compare`` command."""

from analytics.scenarios import register_cli

__all__ = ["register_cli"]
