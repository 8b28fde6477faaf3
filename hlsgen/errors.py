"""One exception type for every user-facing error.

The CLI prints its message on one line and exits with code 2; nothing else catches it.
"""

import difflib


class HlsgenError(Exception):
    """A problem with the user's input or environment, stated as: where, what, what is allowed."""


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
