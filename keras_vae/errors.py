"""The package's own error type: the CLI prints its message as one line and exits non-zero."""


class KerasVAEError(Exception):
    """Bad input a user can fix: the message names what was wrong and what to do."""


class ConfigError(KerasVAEError):
    """An option is out of range; parameter names it (a TrainConfig field), as the message does."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter
