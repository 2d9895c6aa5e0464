"""The one exception type for mistakes a user can fix: the CLI prints it as one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class UserError(Exception):
    """Bad input (file, column, config field): the message says what is wrong and how to fix it."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message, so a UserError stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shown(columns: Iterable[Any], limit: int = 20) -> str:
    """A short, comma-separated list of column names for error messages."""
    names = [str(c).encode("unicode_escape").decode("ascii") if not str(c).isprintable() else str(c) for c in columns]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def unknown(kind: str, word: str, choices: Iterable[str]) -> UserError:
    """A UserError for an unknown name, with a suggestion and the list of valid names."""
    choices = sorted(str(c) for c in choices)
    shown = ", ".join(choices[:30]) + (", ..." if len(choices) > 30 else "")
    return UserError(f'unknown {kind} "{word}"{did_you_mean(word, choices)}; choose one of: {shown}')


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; says whether the unfinished run can be resumed, and how."""

    def __init__(self, run_dir: str, resumable: bool) -> None:
        self.run_dir, self.resumable = run_dir, resumable
        hint = (f"resume it with: trainwell train --resume {run_dir}" if resumable
                else "nothing was saved (no checkpoint yet)")  # fmt: skip
        super().__init__(f"interrupted; {hint}")
