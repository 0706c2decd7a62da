"""A tiny timm-style registry: a decorator records a builder under a name, `create` builds it.

Every pluggable concept (synthetic domains, ingest formats, metrics' threshold criteria, later CAM methods and
samplers) gets one `Registry`; nothing dispatches on strings with if/else chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builder callables for one concept (`kind` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: record `fn` under `name` (names are unique per registry)."""

        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = fn
            return fn

        return deco

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as `name`; a KeyError listing the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; expected one of {self.names()}") from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Build `name`; kwargs left as None are dropped so the builder's defaults apply."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def __contains__(self, name: object) -> bool:
        return name in self._items
