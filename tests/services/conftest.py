"""Fixtures of the service tests: close the databases ``support.run_robot`` opened after each test."""

from support import close_databases

__all__ = ["close_databases"]
