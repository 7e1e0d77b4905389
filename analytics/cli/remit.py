"""The ``remit`` command."""

from analytics.remittance import register_cli

__all__ = ["register_cli"]
