"""The system registry: systems register by name, record how they were built, and rebuild from that.

`register_system` wraps a class so that every instance remembers its registry name and its
constructor arguments (`system_config`); a checkpoint stores that record beside the weights, so
`load_system` rebuilds the model with no extra arguments. `create_system` builds by name and
passes the backbone's channel counts only to systems that take them (the audio-only baseline
has no visual input).

Example:
    >>> from avlab.models import create_system, list_systems, system_config
    >>> "avisnet" in list_systems()
    True
    >>> model = create_system("visual_only", channels=(8, 16, 32), fpn_width=8, separation=False)
    >>> system_config(model)
    {'name': 'visual_only', 'kwargs': {'channels': (8, 16, 32), 'fpn_width': 8, 'separation': False}}
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from torch import nn

__all__ = ["create_system", "list_systems", "register_system", "system_class", "system_config", "system_task"]

T = TypeVar("T", bound=type[nn.Module])

_REGISTRY: dict[str, type[nn.Module]] = {}
_CONFIG_ATTR = "_avlab_system_config"


def _plain(value: Any) -> Any:
    # Checkpoints are read with torch.load(weights_only=True): keep the record to builtins.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"system arguments must be numbers, strings, None, lists, tuples or dicts to be saved in "
        f"a checkpoint; got {type(value).__name__}"
    )


def register_system(name: str) -> Callable[[T], T]:
    """Class decorator: register a system under `name` and record its constructor arguments.

    Every instance of the class gets a record ``{"name": name, "kwargs": {...}}`` of the
    arguments it was built with (by keyword, defaults left out), read by `system_config`.

    Args:
        name: Registry name, e.g. "avisnet".

    Returns:
        The decorator; it returns the class with its ``__init__`` wrapped.

    Raises:
        ValueError: `name` is taken by another class.

    Example:
        >>> from avlab.models import VisualOnly
        >>> register_system("visual_only")(VisualOnly) is VisualOnly  # the same class again: accepted
        True
    """

    def decorate(cls: T) -> T:
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"system name {name!r} is already registered to {old!r}")
        _REGISTRY[name] = cls
        if getattr(cls.__init__, "_avlab_records", None) == name:
            return cls  # registered again (module reloaded): already wrapped
        signature = inspect.signature(cls.__init__)
        original = cls.__init__

        @functools.wraps(original)
        def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if type(self) is cls:  # the outermost class records; a subclass's own wrapper wins
                bound = signature.bind(self, *args, **kwargs)
                given: dict[str, Any] = {}
                for key, value in bound.arguments.items():
                    if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                        given.update(value)  # a subclass forwarding **options: record them flat
                    elif key != "self":
                        given[key] = value
                object.__setattr__(self, _CONFIG_ATTR, {"name": name, "kwargs": _plain(given)})

        __init__._avlab_records = name  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[method-assign]
        return cls

    return decorate


def system_class(name: str) -> type[nn.Module]:
    """The class registered as `name`.

    Raises:
        ValueError: Unknown name; the message lists the known systems.

    Example:
        >>> system_class("pixelplayer").__name__
        'PixelPlayer'
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r}; known systems: {', '.join(list_systems())}") from None


def list_systems(task: str | None = None) -> list[str]:
    """Sorted names of the registered systems, optionally those of one task.

    Args:
        task: "segmentation" (frame-level sounding-object masks and separation, the batch
            contract of `avlab.models`) or "vis" (video instance segmentation); None: all.

    Example:
        >>> list_systems()
        ['afcv', 'audio_only', 'avisnet', 'condinst_vis', 'coseg', 'crossvis', 'pixelplayer', 'visual_only']
        >>> list_systems("vis")
        ['afcv', 'condinst_vis', 'crossvis']
    """
    return sorted(name for name, cls in _REGISTRY.items() if task is None or system_task(name) == task)


def system_task(name: str) -> str:
    """The task a system is trained for: its class's ``task`` ("segmentation" by default).

    Example:
        >>> system_task("avisnet"), system_task("afcv")
        ('segmentation', 'vis')
    """
    return str(getattr(system_class(name), "task", "segmentation"))


def create_system(name: str, *, channels: Sequence[int] | None = None, **kwargs: Any) -> nn.Module:
    """Build the system registered as `name`.

    Args:
        name: Registry name (`list_systems`).
        channels: The backbone's channels per level, finest first (``bundle.channels`` of C3,
            C4, C5); passed only to systems that take visual input.
        **kwargs: The system's keyword options.

    Returns:
        The new system, in train mode.

    Example:
        >>> model = create_system("audio_only", channels=(8, 16, 32), audio_channels=(4, 8),
        ...                       audio_dim=8, separation=False)
        >>> type(model).__name__
        'AudioOnly'
    """
    cls = system_class(name)
    if channels is not None and "channels" in inspect.signature(cls.__init__).parameters:
        kwargs = {"channels": tuple(int(c) for c in channels), **kwargs}
    return cls(**kwargs)


def system_config(system: nn.Module) -> dict[str, Any]:
    """How `system` was built: ``{"name": ..., "kwargs": {...}}``; `create_system` rebuilds it.

    Raises:
        TypeError: `system` is not an instance of a registered system.

    Example:
        >>> system_config(create_system("visual_only", channels=(8, 16, 32)))["name"]
        'visual_only'
    """
    config = getattr(system, _CONFIG_ATTR, None)
    if config is None:
        raise TypeError(f"{type(system).__name__} is not a registered avlab system")
    return {"name": config["name"], "kwargs": dict(config["kwargs"])}
