"""The ``sample`` command."""

from analytics.datasets import register_cli

__all__ = ["register_cli"]
