"""Include/exclude globs with '**', matched against '/'-separated paths under a root.

A pattern without '/' matches the last path component at any depth (like .gitignore);
a pattern with '/' matches the whole relative path; '**' spans any number of directories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _translate(pat: str) -> str:
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[":
            j = pat.find("]", i + 2 if pat.startswith("[!", i) or pat.startswith("[]", i) else i + 1)
            if j < 0:
                out.append(re.escape("["))
                i += 1
                continue
            body = pat[i + 1 : j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return "".join(out)


class GlobSet:
    """A compiled list of patterns; ``match(relpath)`` is True when any pattern matches."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = [p for p in patterns if p]
        anchored: list[str] = []
        basename: list[str] = []
        for p in self.patterns:
            p = p.rstrip("/") or p
            if "/" in p:
                anchored.append(_translate(p.lstrip("/")))
            else:
                basename.append(_translate(p))
        self._anchored = re.compile("^(?:" + "|".join(anchored) + ")$") if anchored else None
        self._basename = re.compile("^(?:" + "|".join(basename) + ")$") if basename else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, relpath: str) -> bool:
        if self._basename is not None and self._basename.match(relpath.rsplit("/", 1)[-1]):
            return True
        return bool(self._anchored is not None and self._anchored.match(relpath))
