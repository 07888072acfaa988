"""The one exception the CLI turns into a one-line message and a non-zero exit."""


class InputError(Exception):
    """A problem with something the user gave us: a file, a folder, an option value.

    ``str(error)`` is the whole message: ``"<path>: <problem>"`` when a path is known.
    """

    def __init__(self, problem: str, path=None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def one_line(error: Exception, limit: int = 160) -> str:
    """An exception's message on one line, shortened to ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
