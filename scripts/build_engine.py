"""Build the engine wheel into this checkout's .wheels/ (setup.sh runs it before anything is installed).

The builder ships in the package (`python -m guidance_rules.engine.build`, see its docstring);
this wrapper runs that file directly, since importing guidance_rules needs the dependencies
setup.sh has not installed yet. Stdlib only.

    python scripts/build_engine.py [--force] [--install]   # prints the directory holding the wheel
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def builder() -> ModuleType:
    """guidance_rules/engine/build.py, loaded as a plain module (not through the package)."""
    spec = importlib.util.spec_from_file_location("guidance_rules_engine_build", ROOT / "guidance_rules" / "engine" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the like look their module up here
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(builder().main(sys.argv[1:], wheels=ROOT / ".wheels"))
