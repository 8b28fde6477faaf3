"""The one validator of hlsgen's YAML inputs: configs (model/spec.py) and board files
(hardware/boards.py).

A `Section` reads one mapping: each read names its key, and a bad value is recorded, not raised,
so that one run reports every mistake of a file.  Unknown keys are reported first (a typo like
`hiden:` is the cause of the `hidden: missing` that follows it).  Strings that end up in Tcl,
make, a shell command or C++ are matched against strict patterns.
"""

from __future__ import annotations

import math
import re

from hlsgen.errors import HlsgenError, did_you_mean

# A name the vendor tools take as one word: parts, platforms, board parts, ports, pins, properties.
TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
TOKEN_ALLOWED = "letters, digits and _ . : - (no spaces or quotes), at most 128 characters"


class ConfigErrors(HlsgenError):
    """Every problem of one file; the CLI prints each on its own `error:` line."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


class _Invalid(Exception):
    """A section with recorded problems: the checks that build on its values are skipped."""


class Problems:
    """The problems found in one file so far: unknown keys, then everything else."""

    def __init__(self):
        self.unknown: list[str] = []
        self.invalid: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.invalid:
            self.invalid.append(message)

    def collecting(self):
        """`with problems.collecting():` runs one part of a file; an HlsgenError it raises is
        recorded and the reading goes on with the next part."""
        return _Collecting(self)

    def raise_if_any(self) -> None:
        messages = self.unknown + self.invalid
        if messages:
            raise ConfigErrors(messages)


class _Collecting:
    def __init__(self, problems: Problems):
        self.problems = problems

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, ConfigErrors):
            self.problems.invalid.extend(exc.messages)
            return True
        if isinstance(exc, HlsgenError):
            self.problems.add(str(exc))
            return True
        return isinstance(exc, _Invalid)


def show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class Section:
    """A YAML mapping being read: remembers its path, records bad values, rejects unknown keys."""

    def __init__(self, data, path: str, problems: Problems | None = None):
        self.problems = problems if problems is not None else Problems()
        self.path, self.known, self.failed, self.children, self.finished = path, set(), False, [], False
        if data is None:
            data = {}
        self.silent = False
        if not isinstance(data, dict):
            self.fail(f"{path}: expected a mapping, got {show(data)}")
            self.silent = True      # its keys would only repeat that: not read, not reported
            data = {}
        self.data = data

    # ------------------------------------------------------------------ bookkeeping
    def where(self, key) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def fail(self, message: str, fallback=None):
        """Record a problem of this section; returns `fallback` so that reading goes on."""
        if not self.silent:
            self.problems.add(message)
        self.failed = True
        return fallback

    def raw(self, key, default=None):
        self.known.add(key)
        return self.data.get(key, default)

    def has(self, key) -> bool:
        return key in self.data

    def finish(self, nested: bool = False) -> None:
        """Record the keys nobody asked for (once); nested: in the mappings read under this one too.
        A section whose reading an error cut short never gets here: its keys were not all asked for."""
        if self.finished:
            return
        self.finished = True
        for child in self.children if nested else ():
            child.finish(nested=True)
        for key in self.data:
            if key not in self.known:
                self.failed = True
                self.problems.unknown.append(f"{self.where(key)}: unknown key (allowed: {', '.join(sorted(map(str, self.known)))})"
                                             + did_you_mean(key, self.known))

    @property
    def bad(self) -> bool:
        """A value of this section or of a mapping read under it was recorded as a problem."""
        return self.failed or any(child.bad for child in self.children)

    def check(self) -> None:
        """finish() here and below (the reading is complete), then stop this section's further
        checks when any of its values was bad."""
        self.finish(nested=True)
        if self.bad:
            raise _Invalid()

    # ------------------------------------------------------------------ typed reads
    def int(self, key, default=None, minimum=1, maximum=None, optional=False):
        value = self.raw(key, default)
        fallback = default if default is not None else minimum
        if value is None:
            if optional:
                return None
            return self.fail(f"{self.where(key)}: missing (allowed: an integer >= {minimum})", fallback)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(f"{self.where(key)}: {show(value)} is not an integer", fallback)
        if value < minimum or (maximum is not None and value > maximum):
            hi = f" and <= {maximum}" if maximum is not None else ""
            return self.fail(f"{self.where(key)}: {value} is out of range (allowed: integers >= {minimum}{hi})",
                             fallback)
        return value

    def float(self, key, default, minimum=0.0, optional=False):
        value = self.raw(key, default)
        if value is None and optional:
            return None
        fallback = default if default is not None else minimum + 1
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            if value is None:
                return self.fail(f"{self.where(key)}: missing (allowed: a number > {minimum:g})", fallback)
            return self.fail(f"{self.where(key)}: {show(value)} is not a finite number", fallback)
        if value <= minimum:
            return self.fail(f"{self.where(key)}: {value} is out of range (allowed: numbers > {minimum:g})", fallback)
        return value

    def bool(self, key, default):
        value = self.raw(key, default)
        if not isinstance(value, bool):
            return self.fail(f"{self.where(key)}: {show(value)} is not a boolean (allowed: true, false)", default)
        return value

    def choice(self, key, default, allowed):
        value = self.raw(key, default)
        if value is None:
            return self.fail(f"{self.where(key)}: missing (allowed: {', '.join(map(str, allowed))})", allowed[0])
        if value not in allowed:
            return self.fail(f"{self.where(key)}: {show(value)} is not allowed (allowed: "
                             f"{', '.join(map(str, allowed))})" + did_you_mean(value, allowed), allowed[0])
        return value

    def text(self, key, required=True, pattern=TOKEN, allowed=TOKEN_ALLOWED):
        """A string matching `pattern` (by default one word for the vendor tools)."""
        value = self.raw(key)
        if value is None:
            return self.fail(f"{self.where(key)}: missing (allowed: {allowed})", "x") if required else None
        if not isinstance(value, str) or not pattern.match(value):
            return self.fail(f"{self.where(key)}: {show(value)} is not allowed (allowed: {allowed})", "x")
        return value

    def strings(self, key, pattern=TOKEN, allowed=TOKEN_ALLOWED) -> list:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            return self.fail(f"{self.where(key)}: {'missing' if value is None else show(value) + ' is not a list'} "
                             f"(allowed: a non-empty list of {allowed})", [])
        bad = [v for v in value if not isinstance(v, str) or not pattern.match(v)]
        if bad:
            return self.fail(f"{self.where(key)}: {show(bad[0])} is not allowed (allowed: {allowed})", [])
        return value

    def items(self, key, required=True) -> list:
        """A non-empty YAML list (of mappings, each read by the caller)."""
        value = self.raw(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not value:
            return self.fail(f"{self.where(key)}: {'missing' if value is None else show(value) + ' is not a list'} "
                             f"(allowed: a non-empty list)", [])
        return value

    def sub(self, key, required=False) -> "Section":
        """The mapping under `key` (empty when absent; a problem too when required)."""
        value = self.raw(key)
        if value is None and required:
            self.fail(f"{self.where(key)}: missing (allowed: a mapping)")
        child = Section(value, self.where(key), self.problems)
        child.silent = child.silent or (value is None and required)
        self.children.append(child)
        return child
