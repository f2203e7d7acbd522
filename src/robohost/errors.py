"""The one exception tree of robohost.

Each branch is a decision the caller takes:

- ``ConfigError``: the user must fix a file or option; nothing runs (exit 2).
- ``StrategyError``: the robot's own code failed; recorded, then skip or halt by config (exit 3).
- ``RobotHaltedError``: a kill switch is set; a person must resume the robot (exit 4).
- ``StateError``: an action does not fit the stored state (no run to resume, a run already going) (exit 5).
- ``DataError``: market data cannot be read at all (a missing or unreadable file) (exit 6).
- ``JournalError``: the trading database refused a write; the run resumes from its last commit (exit 7).
- ``LeaseError``: another process runs this robot; ask it (``robohost trigger``) or wait (exit 8).
- ``BackupError``: a backup, verification, restore or upgrade failed; nothing was overwritten (exit 9).
- ``IllegalTransitionError``: a programming error in order handling; never expected (exit 70).

Every message is one line that says what went wrong and what to do about it.
This module imports nothing from robohost.
"""

from __future__ import annotations


class RobohostError(Exception):
    """Base of every error robohost reports to a user."""

    exit_code = 1


class ConfigError(RobohostError):
    """A configuration file, option or secret is missing or invalid."""

    exit_code = 2


class StrategyError(RobohostError):
    """The robot's strategy could not be loaded or raised while running."""

    exit_code = 3


class RobotHaltedError(RobohostError):
    """The robot's kill switch is set; ``robohost resume`` clears it."""

    exit_code = 4


class StateError(RobohostError):
    """The requested action does not fit the stored state."""

    exit_code = 5


class DataError(RobohostError):
    """Market data could not be read (missing file, unknown columns, unreadable format)."""

    exit_code = 6


class JournalError(RobohostError):
    """The trading database refused a write, or its writer process stopped."""

    exit_code = 7


class LeaseError(RobohostError):
    """Another process holds the robot's lease: one robot is never run twice at once."""

    exit_code = 8


class IllegalTransitionError(RobohostError):
    """An order was asked to move to a status its transition table forbids."""

    exit_code = 70


class BackupError(RobohostError):
    """A backup, verification, restore or upgrade could not be done; the message says what and why."""

    exit_code = 9
