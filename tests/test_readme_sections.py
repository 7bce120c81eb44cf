"""The README's "Testing your services" run as a user's suite; its "Adopting restate-pg in an
existing FastAPI app" and the workflow of "Waiting on the outside world" checked against the code
they quote (whose own tests run it: the example's, tests/test_quickstart.py, tests/test_workflows.py)."""

from __future__ import annotations

import re
import textwrap
import typing

import pytest

from tests.support.processes import REPO

pytest_plugins = ["pytester"]

README = REPO / "README.md"


def section_files(title: str, *, all_named: bool = True) -> typing.List[typing.Tuple[str, str]]:
    """(path, text) of the section's python blocks that start with a `# path` comment line (with
    `all_named`, every python block of the section must)."""
    section = README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    files = []
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        first, _, rest = block.partition("\n")
        named = re.fullmatch(r"# [\w./-]+\.py", first) is not None
        assert named or not all_named, f"a block of '{title}' does not name its file:\n{block}"
        if named:
            files.append((first[2:].strip(), rest))
    return files


@pytest.mark.slow
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


@pytest.mark.parametrize("title, all_named, quoted", [
    ("Adopting restate-pg in an existing FastAPI app", True, 4),
    ("Waiting on the outside world", False, 3),  # the quickstart's PaymentWorkflow; a promise rejected
])
def test_a_section_quotes_the_code_as_it_is(title: str, all_named: bool, quoted: int) -> None:
    files = section_files(title, all_named=all_named)
    assert len(files) >= quoted
    for path, text in files:
        source = (REPO / path).read_text()
        assert text in source, f"the README quotes {path}, which no longer reads:\n{text}"
