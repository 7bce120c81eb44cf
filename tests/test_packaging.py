"""The package lists every module folder, so that a wheel (not only an editable install) has them."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "restate_pg").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    mapped = {name: REPO / folder for name, folder in setuptools["package-dir"].items()}
    assert all((folder / "__init__.py").exists() for folder in mapped.values())


def test_every_sql_file_ships_as_package_data() -> None:
    """The statements, functions and views (restate_pg/store/sql/) and the revisions' frozen SQL
    with its manifest (migrations/sql/) are read at run time: a glob that misses one breaks a wheel."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"restate_pg.store": REPO / "restate_pg" / "store", "restate_pg.migrations": REPO / "migrations"}
    for package, folder in folders.items():
        globs = setuptools["package-data"][package]
        shipped = {path for pattern in globs for path in folder.glob(pattern)}
        data = {path for path in (folder / "sql").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
        assert data, package
        assert data <= shipped, f"add to [tool.setuptools.package-data] {package}: {sorted(map(str, data - shipped))}"


def test_the_version_is_written_once_for_python_and_once_for_packaging() -> None:
    """`restate_pg.__version__` (from core/version.py) and pyproject.toml's version agree."""
    import restate_pg

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert restate_pg.__version__ == project["version"]
