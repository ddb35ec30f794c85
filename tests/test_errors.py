"""One error hierarchy (issue 21, point 12): every exception class the package defines derives from
GuidanceRulesError, so a caller catches the package's errors with one except clause. Two stand
apart, each for a reason: the engine builder runs with the standard library alone, from the
unzipped wheel, before the package can be imported; Terminated is a BaseException, as
KeyboardInterrupt is, so that no `except Exception` swallows a stop."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import guidance_rules
from guidance_rules.errors import GuidanceRulesError

APART = {"guidance_rules.engine.build.BuildError", "guidance_rules.errors.Terminated"}
OPTIONAL = ("guidance_rules.frames.spark", "guidance_rules.frames.dask", "guidance_rules.frames.ray")


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(guidance_rules.__path__, "guidance_rules."):
        if info.name.startswith(OPTIONAL) or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_every_error_the_package_defines_is_a_guidance_rules_error() -> None:
    classes = _exception_classes()
    assert "guidance_rules.service.errors.ServiceError" in classes and "guidance_rules.service.auth.AuthConfigError" in classes
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, GuidanceRulesError) and name not in APART)
    assert not outside, f"not part of the one hierarchy (derive from GuidanceRulesError): {outside}"
    assert set(classes) >= APART, "a class kept apart no longer exists: update APART"
