"""The public namespace: ``callflow.__all__`` is complete, importable and documented."""

from __future__ import annotations

import importlib
import inspect
import sys
from types import GenericAlias, ModuleType, UnionType

import pytest

import callflow


def public_names() -> list[str]:
    """Every public name ``callflow`` offers (submodules are namespaces, not names)."""
    return [
        name
        for name in dir(callflow)
        if not name.startswith("_")
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any"}
        and not isinstance(getattr(callflow, name), ModuleType)
    ]


def test_all_lists_every_public_name() -> None:
    assert sorted(public_names()) == sorted(callflow.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(callflow.__all__)) == len(callflow.__all__)


@pytest.mark.parametrize("name", callflow.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}

    exec(f"from callflow import {name}", namespace)

    assert getattr(callflow, name) is namespace[name]


DOCUMENTED = [
    name
    for name in callflow.__all__
    if inspect.isclass(getattr(callflow, name)) or inspect.isfunction(getattr(callflow, name))
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_public_class_and_function_has_its_own_docstring(name: str) -> None:
    obj = getattr(callflow, name)
    inherited = [b.__doc__ for b in obj.__mro__[1:]] if inspect.isclass(obj) else []

    assert (True, False) == (bool((obj.__doc__ or "").strip()), obj.__doc__ in inherited)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_public_class_and_function_is_callflows_own(name: str) -> None:
    assert getattr(callflow, name).__module__.startswith("callflow.")


@pytest.mark.parametrize("name", [n for n in callflow.__all__ if n not in DOCUMENTED])
def test_only_constants_and_type_aliases_go_without_a_docstring(name: str) -> None:
    value = getattr(callflow, name)

    assert isinstance(value, (str, UnionType, GenericAlias)) or hasattr(value, "__origin__")


PRIVATE_MODULES = sorted(
    name
    for name in sys.modules
    if name.startswith("callflow._") and all(p.startswith("_") for p in name.split(".")[1:])
)


@pytest.mark.parametrize("module", PRIVATE_MODULES)
def test_every_private_module_has_an_all_of_names_it_defines(module: str) -> None:
    loaded = importlib.import_module(module)
    names = getattr(loaded, "__all__", None)

    assert names is not None
    assert [] == [name for name in names if not hasattr(loaded, name)]


def test_the_core_modules_are_among_the_checked_ones() -> None:
    core = {
        "callflow._exceptions",
        "callflow._core._invite",
        "callflow._core._machine",
        "callflow._core._models",
        "callflow._core._notifications",
        "callflow._core._switchboard",
    }

    assert core <= set(PRIVATE_MODULES)
