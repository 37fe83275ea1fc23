"""The error hierarchy. Every error a user can cause is a ``CiarsimError``.

The CLI catches ``CiarsimError``, prints its message and exits non-zero without a traceback.
``assert`` is used only for internal invariants, never for user input.
"""


class CiarsimError(Exception):
    """Root of every error ciarsim raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ScenarioError(CiarsimError):
    """A scenario file or override is malformed or out of range (exit code 2)."""

    exit_code = 2


class UsageError(CiarsimError):
    """A command-line option or argument is invalid: a bad value, an output folder that cannot be
    written (exit code 2, like every input error)."""

    exit_code = 2


class CheckpointError(CiarsimError):
    """A checkpoint is missing, corrupted or does not match the expected config."""

    exit_code = 3


class TraceFormatError(CiarsimError):
    """A decode trace or capacity trace file cannot be read."""

    exit_code = 2


class MissingComponentError(CiarsimError):
    """A part of the pipeline the run needs is not built yet; the message says how to build it."""

    exit_code = 4


class EmulationError(CiarsimError):
    """The emulator cannot run here (no root / CAP_NET_ADMIN, no /dev/net/tun, no ``ip``) or one
    of its processes failed (exit code 4, like another missing part)."""

    exit_code = 4
