"""How the tests are laid out: no module of tests/ imports a test module (importing one runs its
module-level code and re-registers its tests and fixtures wherever it is imported, and ties a test's
helpers to another test's file). Shared helpers and fixtures live in tests/*_support.py,
tests/factories.py or tests/conftest.py."""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
MODULES = sorted(TESTS.glob("*.py"))  # the test modules, and the support modules too


def is_test_module(name):
    """`name` as written in an import (`tests.test_x`, `.test_x`, `test_x`) names a test module."""
    return any(part.startswith("test_") for part in name.split("."))


def imported_test_modules(source):
    """Every module a source imports that is a test module, with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.module and is_test_module(node.module):
                found.append((node.lineno, module))
            elif node.module in (None, "tests"):  # `from . import test_x`, `from tests import test_x`
                found += [
                    (node.lineno, f"{module}.{alias.name}".replace("..", "."))
                    for alias in node.names
                    if is_test_module(alias.name)
                ]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_of_the_tests_imports_a_test_module(path):
    imports = imported_test_modules(path.read_text(encoding="utf-8"))
    assert not imports, f"{path.name} imports test modules {imports}: move what it needs to a tests/*_support.py"


@pytest.mark.parametrize(
    "source",
    [
        "from .test_contract import assert_error",
        "from tests.test_contract import assert_error",
        "import tests.test_contract",
        "from . import test_contract",
        "from tests import test_contract as contract",
        "def helper():\n    from .test_payouts import ACCOUNT\n",  # a function-local import counts too
    ],
)
def test_each_way_of_importing_a_test_module_is_found(source):
    assert imported_test_modules(source)


@pytest.mark.parametrize(
    "source",
    [
        "from .contract_support import assert_error",
        "from tests.factories import ClientFactory",
        "from . import paystack_schemas",
        "from models.actions import booking",
        "import pytest",
    ],
)
def test_support_modules_and_the_project_are_fine(source):
    assert imported_test_modules(source) == []
