"""Every module imports on its own, first, in a fresh interpreter.

An import circle can hide behind the order in which a test run happens to import
modules (a package's `__init__` importing a module that imports the package back); a
command or a worker that imports another module first then fails at start.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"


def _modules() -> list[str]:
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(SERVICE.parent).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _import_alone(module: str) -> str | None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=SERVICE.parent,
    )
    if result.returncode == 0:
        return None
    return f"{module}: {result.stderr.strip().splitlines()[-1]}"


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = _modules()
    assert "service.config.witnesscheck" in modules
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(_import_alone, modules) if f is not None]
    assert failures == []
