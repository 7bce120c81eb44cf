"""The README's "Testing your services" run as a user's suite, and its "Adopting restate-pg in an
existing FastAPI app" checked against the example it quotes (whose own tests run it)."""

from __future__ import annotations

import re
import textwrap
import typing

import pytest

from tests.support.processes import REPO

pytest_plugins = ["pytester"]

README = REPO / "README.md"


def section_files(title: str) -> typing.List[typing.Tuple[str, str]]:
    """(path, text) of the section's python blocks that start with a `# path` comment line."""
    section = README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    files = []
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        first, _, rest = block.partition("\n")
        assert first.startswith("# "), f"a block of '{title}' does not name its file:\n{block}"
        files.append((first[2:].strip(), rest))
    return files


def test_testing_your_services_runs_as_written(pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    files = section_files("Testing your services")
    assert [path for path, _ in files] == ["conftest.py", "myapp/reminders.py", "test_reminders.py"]
    for path, text in files:
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    pytester.makeini(textwrap.dedent("""
        [pytest]
        asyncio_mode = auto
    """))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_adopting_quotes_the_example_as_it_is() -> None:
    files = section_files("Adopting restate-pg in an existing FastAPI app")
    assert len(files) >= 4
    for path, text in files:
        source = (REPO / path).read_text()
        assert text in source, f"the README quotes {path}, which no longer reads:\n{text}"
