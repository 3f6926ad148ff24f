"""The import direction of ../shared/STYLE.md, checked on the source so each layer stays reusable alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avlab"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_under(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py")) if (PACKAGE / subpackage).exists() else []


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_train_imports_lightning_and_only_widgets_imports_ipywidgets(path: Path) -> None:
    inside = path.relative_to(PACKAGE).parts[0]
    names = imported_modules(path)
    if inside != "train":
        assert not any(starts(n, ("lightning", "pytorch_lightning")) for n in names), path
    if inside != "widgets":
        assert not any(starts(n, ("ipywidgets",)) for n in names), path


@pytest.mark.parametrize("path", modules_under("store"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_store_does_not_import_heads_models_or_train(path: Path) -> None:
    names = imported_modules(path)
    assert not any(starts(n, ("avlab.heads", "avlab.models", "avlab.train")) for n in names), path


@pytest.mark.parametrize("path", modules_under("heads"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_heads_import_only_torch(path: Path) -> None:
    # torchvision.ops: the detection losses and NMS, a well-kept library rather than our own.
    allowed = ("torch", "torchvision.ops", "avlab.heads", "__future__", "math", "typing", "collections", "dataclasses", "functools")
    assert all(starts(n, allowed) for n in imported_modules(path)), path


@pytest.mark.parametrize("path", modules_under("media") + modules_under("datasets"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_media_and_datasets_do_not_need_torch(path: Path) -> None:
    # Decoding and manifests run in light processes (dask workers, data tools) without torch.
    assert not any(starts(n, ("torch", "torchvision")) for n in imported_modules(path)), path


def test_the_layering_check_sees_imports() -> None:
    # Guards the checker itself: a module known to import PyAV must be seen doing so.
    assert "av" in imported_modules(PACKAGE / "media" / "video.py")
