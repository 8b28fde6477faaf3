"""One exception type for every user-facing error, and the exit codes of the command line.

The CLI prints an HlsgenError as one `error: ...` line; the lines after the message's first (a
tool's own output) follow indented, at most MAX_TOOL_LINES of them.  Exit codes: 2 for bad input,
a broken project or a missing tool (HlsgenError), 1 for a verified mismatch (returned by the
commands that compare), 130 for Ctrl-C, 3 for a bug in hlsgen itself.
"""

import difflib
import re

EXIT_MISMATCH = 1
EXIT_ERROR = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
MAX_TOOL_LINES = 20

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Lines that carry no information on why a tool failed: blank, rules, progress bars.
_NOISE = re.compile(r"^[\s\-=*#.|+_~>]*$")


class HlsgenError(Exception):
    """A problem with the user's input or environment, stated as: where, what, what is allowed."""


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def last_lines(output: str, limit: int = MAX_TOOL_LINES) -> list[str]:
    """The last `limit` meaningful lines of a tool's output (no colour codes, no blank or rule lines)."""
    lines = [_ANSI.sub("", line).rstrip() for line in (output or "").splitlines()]
    return [line for line in lines if not _NOISE.match(line)][-limit:]


def tool_failure(what: str, output: str) -> HlsgenError:
    """`what` failed: the error line, then the tool's own last lines (or a note that it printed none)."""
    lines = last_lines(output) or ["(the tool printed nothing)"]
    return HlsgenError(what + "\n" + "\n".join(lines))


def format_error(exc: BaseException) -> str:
    """`error: <first line>`, then the rest of the message (a tool's lines) indented, at most 20.
    An error that carries several problems (a config's, all found in one run) prints one
    `error:` line for each."""
    if getattr(exc, "messages", None):
        return "\n".join("error: " + " ".join(m.split()) for m in exc.messages)
    first, _, rest = str(exc).strip().partition("\n")
    lines = [f"error: {first.strip() or type(exc).__name__}"]
    lines += ["    " + line for line in last_lines(rest)]
    return "\n".join(lines)
