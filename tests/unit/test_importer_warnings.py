"""tests/tools/importer_warnings.py: an importer finding passes only when README.md explains it."""

from __future__ import annotations

from pathlib import Path

from tests.tools import importer_warnings as iw

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
LOG = """Importing with galaxy-importer 0.4.44
WARNING: Ignore files skip ansible-test sanity tests, found ignore-2.21.txt with 6 statement(s)
WARNING: plugins/module_utils/x.py:1:2: W503 line break before binary operator
Importer processing completed successfully
"""


def test_the_readme_lists_the_ignore_file_warning() -> None:
    assert any(p.startswith("Ignore files skip ansible-test sanity tests") for p in iw.explained(README))


def test_an_unlisted_finding_is_reported() -> None:
    assert iw.unexplained(LOG, README) == ["plugins/module_utils/x.py:1:2: W503 line break before binary operator"]


def test_exit_codes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text(LOG)
    assert iw.main([str(log)]) == 1
    log.write_text(LOG.replace("W503", "X").splitlines()[0] + "\n" + LOG.splitlines()[1] + "\n" + iw.DONE + "\n")
    assert iw.main([str(log)]) == 0
    log.write_text("ERROR: The import failed for the following reason: No role readme found\n")
    assert iw.main([str(log)]) == 2
