"""The head registry: heads register under a name and a family, and are built by name.

A config (read only at the CLI edge) names heads as strings; `create_head` turns the string and
keyword arguments into a module, and the registry-driven tests build every registered head.

Example:
    >>> from avlab.heads import create_head, list_heads
    >>> "logan" in list_heads("fusion")
    True
    >>> type(create_head("mul", 8, 4)).__name__
    'MulFusion'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["create_head", "head_family", "list_heads", "register_head"]

T = TypeVar("T", bound=Callable[..., Any])

# name -> (family, factory). Names are unique across families: a config names a head alone.
_REGISTRY: dict[str, tuple[str, Callable[..., Any]]] = {}


def register_head(name: str, *, family: str | None = None) -> Callable[[T], T]:
    """Class decorator registering a head under `name`.

    Args:
        name: Registry name, unique across families, e.g. "logan".
        family: Family, e.g. "fusion"; by default the last part of the defining module's name
            (a class in ``avlab.heads.fusion`` joins "fusion").

    Returns:
        The decorator; it returns the class unchanged.

    Raises:
        ValueError: `name` is taken by another class.

    Example:
        >>> from avlab.heads.fusion import MulFusion
        >>> register_head("mul")(MulFusion) is MulFusion  # the same class again: accepted
        True
        >>> class OtherMul(MulFusion):
        ...     '''Not the registered class.'''
        >>> register_head("mul")(OtherMul)
        Traceback (most recent call last):
        ...
        ValueError: head name 'mul' is already registered to <class 'avlab.heads.fusion.MulFusion'>
    """

    def decorate(factory: T) -> T:
        fam = family if family is not None else factory.__module__.rsplit(".", 1)[-1]
        if name in _REGISTRY:
            old = _REGISTRY[name][1]
            # Re-executing the defining module (notebook autoreload) registers the same class
            # again: accept that, refuse a different class under a taken name.
            same = (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
                factory.__module__,
                getattr(factory, "__qualname__", None),
            )
            if not same:
                raise ValueError(f"head name {name!r} is already registered to {old!r}")
        _REGISTRY[name] = (fam, factory)
        return factory

    return decorate


def _lookup(name: str) -> tuple[str, Callable[..., Any]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown head {name!r}; known heads: {known}") from None


def create_head(name: str, *args: Any, **kwargs: Any) -> Any:
    """Build the head registered as `name` with the given constructor arguments.

    Args:
        name: Registry name.
        *args: Positional constructor arguments (the input sizes).
        **kwargs: Keyword constructor arguments (the options).

    Returns:
        The new module.

    Raises:
        ValueError: `name` is not registered; the message lists the known heads.

    Example:
        >>> head = create_head("fpn_mask", (8, 16, 32), width=16)
        >>> type(head).__name__
        'FPNMaskHead'
    """
    return _lookup(name)[1](*args, **kwargs)


def head_family(name: str) -> str:
    """The family a registered head belongs to.

    Raises:
        ValueError: `name` is not registered.

    Example:
        >>> head_family("audio_unet")
        'separation'
    """
    return _lookup(name)[0]


def list_heads(family: str | None = None) -> list[str]:
    """Sorted names of the registered heads, of one family or of all.

    Args:
        family: Keep only this family; None lists every head.

    Raises:
        ValueError: No head belongs to `family`; the message lists the families.

    Example:
        >>> list_heads("fusion")
        ['add', 'concat', 'logan', 'mul', 'tpavi']
    """
    if family is None:
        return sorted(_REGISTRY)
    names = sorted(n for n, (fam, _) in _REGISTRY.items() if fam == family)
    if not names:
        families = ", ".join(sorted({fam for fam, _ in _REGISTRY.values()}))
        raise ValueError(f"no heads in family {family!r}; families: {families}")
    return names
