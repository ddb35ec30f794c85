"""The rule base layer in three parts (issue 21, point 12): the file schemas (`schemas`, pydantic
models of what each YAML file may hold), the domain types the other layers use (`domain`), and the
loading that turns the one into the other (`load`), which defines no type of its own."""

from __future__ import annotations

import dataclasses
import inspect

from pydantic import BaseModel

from guidance_rules.rulebase import domain, load, schemas


def _defined(module: object) -> list[type]:
    return [v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == getattr(module, "__name__", "")]


def test_schemas_are_pydantic_models_and_domain_types_are_frozen_dataclasses() -> None:
    assert _defined(schemas) and all(issubclass(cls, BaseModel) for cls in _defined(schemas))
    assert _defined(domain) and all(dataclasses.is_dataclass(cls) for cls in _defined(domain))
    assert all(cls.__dataclass_params__.frozen for cls in _defined(domain))  # type: ignore[attr-defined]


def test_loading_defines_no_type() -> None:
    assert _defined(load) == []
