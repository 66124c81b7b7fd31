"""The CLI's boundary with the library: the backend chosen before Keras is imported, native stderr kept off
the terminal, and every error the library raises (in its own parameter names) turned into one line naming the
flag, with a non-zero exit and no traceback."""

from __future__ import annotations

import faulthandler
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import typer
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer >= 0.22 vendors click
except ImportError:
    from click.exceptions import ClickException, NoArgsIsHelpError

from cli.options import Backend


class OneLineErrors(TyperGroup):
    """Click's own errors (an option out of its declared range, a missing argument) as the one line every
    other error is, instead of a usage box."""

    def main(self, args=None, *rest, standalone_mode: bool = True, **kwargs):
        args = square_image_size(list(sys.argv[1:] if args is None else args))
        if not standalone_mode:
            return super().main(args, *rest, standalone_mode=False, **kwargs)
        try:
            result = super().main(args, *rest, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except ClickException as error:
            typer.echo(f"keras-vae: error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


def square_image_size(args: list[str]) -> list[str]:
    """`--image-size N` alone means N N: a click option takes a fixed number of values, so a lone number is
    doubled before click parses the line."""
    args = [
        part for arg in args for part in (arg.split("=", 1) if arg.startswith("--image-size=") else [arg])
    ]
    if "--image-size" not in args:
        return args
    at = args.index("--image-size") + 1
    first, second = args[at : at + 1], args[at + 1 : at + 2]
    if first and first[0].isdigit() and not (second and second[0].isdigit()):
        return [*args[: at + 1], first[0], *args[at + 1 :]]
    return args


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: how every bad input ends."""
    typer.echo(f"keras-vae: error: {message}", err=True)
    raise typer.Exit(code)


def use_backend(backend: Backend, with_tensorflow: bool = False) -> None:
    """Set KERAS_BACKEND before keras is imported (it reads the variable once, at import), then load it,
    and keep freed memory in the process for the next step to reuse (keras_vae.allocator).

    TensorFlow is started here too when it is the backend or when the command needs it anyway
    (train's TensorBoard logging), so that its native start-up lines can be kept off the terminal.
    """
    chosen = Backend(backend).value
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != chosen:
        fail(
            f"keras is already running on {sys.modules['keras'].backend.backend()} in this process; cannot "
            f"switch to {chosen}"
        )
    os.environ["KERAS_BACKEND"] = chosen
    with native_stderr_captured():
        import keras

        from keras_vae.allocator import keep_freed_memory

        keep_freed_memory()
        if with_tensorflow or keras.backend.backend() == "tensorflow":
            start_tensorflow()


def start_tensorflow() -> None:
    """Import TensorFlow, if installed, and let it look for devices: both log from C++ when they first run."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.config.list_physical_devices()
    tf.get_logger().setLevel("ERROR")  # retracing hints when predict sees arrays of new sizes


@contextmanager
def native_stderr_captured():
    """Send file descriptor 2 to a private file for a while: TensorFlow's C++ start-up lines go through absl
    before it is initialised, which TF_CPP_MIN_LOG_LEVEL cannot silence, and tf2onnx and grappler log as they
    convert. When what runs inside fails with anything but keras-vae's own one-line errors, the captured lines
    are shown before the error; a fatal native error (a segfault in a driver) prints Python's fatal error and
    stack on the terminal (faulthandler) and leaves the captured lines in $TMPDIR/keras-vae-*.stderr. The file
    gets a random name, created exclusively and readable by its owner alone (tempfile.mkstemp): a link or a
    FIFO another user plants in $TMPDIR is never opened."""
    sys.stderr.flush()
    captured, name = tempfile.mkstemp(prefix="keras-vae-", suffix=".stderr")
    log = Path(name)
    saved = os.dup(2)
    os.dup2(captured, 2)
    os.close(captured)
    terminal = os.fdopen(os.dup(saved), "w")
    faulthandler.enable(file=terminal)
    replay = False
    try:
        yield
    except BaseException as error:
        replay = not (isinstance(error, KeyboardInterrupt) or own_error(error))
        raise
    finally:
        sys.stderr.flush()
        faulthandler.disable()
        terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
        if replay:
            sys.stderr.write(log.read_text(errors="replace"))
        log.unlink(missing_ok=True)


def flagged(message: str, parameter: str | None) -> str:
    """The library's message about one of its parameters, in the flag's name: 'latent_dim must be ...' becomes
    '--latent-dim must be ...'."""
    if parameter is None or not message.startswith(parameter):
        return message
    return "--" + parameter.replace("_", "-") + message[len(parameter) :]


def own_error(error: BaseException) -> bool:
    """Whether error is one of keras-vae's one-line errors (without importing keras_vae, and with it keras,
    when nothing has yet: then it cannot be)."""
    errors = sys.modules.get("keras_vae.errors")
    return errors is not None and isinstance(error, errors.KerasVAEError)


@contextmanager
def user_errors():
    """Turn the package's own errors, and a full or read-only disk, into one line on stderr and exit code
    2."""
    from keras_vae.errors import ConfigError, KerasVAEError
    from keras_vae.files import write_error

    try:
        yield
    except ConfigError as error:
        fail(flagged(str(error), error.parameter))
    except KerasVAEError as error:
        fail(str(error))
    except (
        OSError
    ) as error:  # a full or read-only disk met outside keras-vae's own writes (TensorBoard's, say)
        described = write_error(error, Path(error.filename or "."))
        if described is None:
            raise
        fail(str(described))
