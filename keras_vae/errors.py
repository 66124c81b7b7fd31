"""The package's own error type: the CLI prints its message as one line and exits non-zero."""


class KerasVAEError(Exception):
    """Bad input a user can fix: the message names what was wrong and what to do."""
