"""The layers import only downwards: the core knows no Dagster, and only the registry knows the backends.

Read from the source with `ast` (every import statement, at module level or inside a function), so a rule
broken in a rarely-run branch fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import creative_assets

PACKAGE = Path(creative_assets.__file__).parent
CORE = ("media", "labels", "detection", "tables", "demo", "reporting", "execution")
BACKENDS = ("creative_assets.detection.torchvision_backend", "creative_assets.detection.detectron2_backend")
REGISTRY = "creative_assets.detection.registry"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement in `path` (absolute names; `from x import y` gives x and x.y)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _sources() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_core_imports_no_dagster():
    offenders = {
        module: sorted(n for n in names if _is_within(n, "dagster"))
        for module, names in _sources().items()
        if any(_is_within(module, f"creative_assets.{core}") for core in CORE)
    }
    assert {m: n for m, n in offenders.items() if n} == {}


def test_only_the_registry_imports_a_backend():
    offenders = {}
    for module, names in _sources().items():
        if module == REGISTRY or any(_is_within(module, b) for b in BACKENDS):
            continue
        hits = sorted(n for n in names if any(_is_within(n, b) for b in BACKENDS))
        if hits:
            offenders[module] = hits
    assert offenders == {}


def test_a_backend_never_imports_the_other_or_the_registry():
    sources = _sources()
    for backend in BACKENDS:
        others = [b for b in BACKENDS if b != backend] + [REGISTRY]
        for module, names in sources.items():
            if _is_within(module, backend):
                assert not [n for n in names if any(_is_within(n, o) for o in others)], module


def test_the_rules_see_real_imports():
    """The scanner finds what is there (so the rules above cannot pass by reading nothing)."""
    sources = _sources()
    assert "dagster" in sources["creative_assets.definitions"]
    assert "creative_assets.detection.torchvision_backend" in sources[REGISTRY]
    assert len([m for m in sources if m.startswith("creative_assets.detection")]) > 10
