"""Dependencies point one way: data <- models <- training, and models <- evaluation, inference;
the run's config (daaf/config.py) sits between data and models' config and everything else.

daaf/data imports nothing from the packages that use it; daaf/models (the network, its meta and
the loading of a model) imports nothing from the packages that train, evaluate or run it; the
library modules of daaf/training import nothing from daaf/evaluation (the trainer receives
periodic evaluation as a callable from the `daaf train` command in daaf/training/commands.py,
the command-line layer that joins them); daaf/evaluation and daaf/inference reach the model
through daaf/models, not daaf/training. daaf/config.py, which every package reads a recorded
config with, imports only data, models' config and utils.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "daaf"
RULES = {
    # package: (packages it must not import, files exempt as command-line glue)
    "data": (("daaf.training", "daaf.evaluation", "daaf.labeling", "daaf.demo", "daaf.cli"), ()),
    "models": (
        (
            "daaf.training",
            "daaf.evaluation",
            "daaf.inference",
            "daaf.labeling",
            "daaf.demo",
            "daaf.cli",
        ),
        (),
    ),
    "training": (("daaf.evaluation", "daaf.labeling", "daaf.demo", "daaf.cli"), ("commands.py",)),
    "evaluation": (("daaf.training",), ()),
    "inference": (("daaf.training",), ()),
}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_scan_sees_imports_inside_functions(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    from daaf.evaluation import evaluate\n")
    assert "daaf.evaluation" in imported_modules(tmp_path / "m.py")


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_point_one_way(package):
    forbidden, exempt = RULES[package]
    files = [p for p in sorted((PACKAGE / package).rglob("*.py")) if p.name not in exempt]
    assert files
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if name.startswith(forbidden)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_config_imports_only_what_lies_below_it():
    allowed = ("daaf.data", "daaf.errors", "daaf.models.config", "daaf.utils")
    names = {n for n in imported_modules(PACKAGE / "config.py") if n.startswith("daaf")}
    assert names and not [n for n in names if not n.startswith(allowed)], sorted(names)
