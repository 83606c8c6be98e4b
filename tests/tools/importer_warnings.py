"""Fail on a galaxy-importer warning or error that the collection README does not explain.

    python tests/tools/importer_warnings.py IMPORTER_LOG [README.md]

galaxy-importer prints ``WARNING: ...`` and ``ERROR: ...`` lines (its flake8, its ansible-lint, its
own checks). Each one is either fixed or explained in README.md, in the section
``### What Galaxy's importer reports``, by a bullet that starts with the warning's text as a glob
in backquotes::

    - `Ignore files skip ansible-test sanity tests, found ignore-2.*.txt with * statement(s)`: why.

Exit 0 when every line is explained, 1 (listing the others) otherwise, 2 when the importer did not
complete.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SECTION = "### What Galaxy's importer reports"
DONE = "Importer processing completed successfully"


def explained(readme: str) -> list[str]:
    """The glob patterns of the README's importer section."""
    found, rest = readme.partition(SECTION)[1:]
    if not found:
        return []
    section = re.split(r"^#{1,3} ", rest, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^- `([^`]+)`", section, flags=re.MULTILINE)


def findings(log: str) -> list[str]:
    """The importer's WARNING/ERROR lines, without the level prefix."""
    return [m.group(2).strip() for m in re.finditer(r"^(WARNING|ERROR): (.*)$", log, flags=re.MULTILINE)]


def unexplained(log: str, readme: str) -> list[str]:
    patterns = explained(readme)
    return [line for line in findings(log) if not any(fnmatch.fnmatchcase(line, p) for p in patterns)]


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__)
        return 2
    log = Path(argv[0]).read_text(encoding="utf-8")
    readme = Path(argv[1] if len(argv) > 1 else REPO_ROOT / "README.md").read_text(encoding="utf-8")
    if DONE not in log:
        print(f"galaxy-importer did not complete ('{DONE}' missing)")
        return 2
    bad = unexplained(log, readme)
    for line in findings(log):
        print(("  explained  " if line not in bad else "  UNEXPLAINED ") + line)
    if bad:
        print(f"{len(bad)} importer finding(s) neither fixed nor explained under '{SECTION}' in README.md")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
