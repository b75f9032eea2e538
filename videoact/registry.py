"""One registry idiom for every kind of plugin: backbones, skeleton networks, pose and anticipation backends,
trainers, formats, eval tasks, temporal heads, checkpoint kinds and run stages.

A :class:`Registry` maps names to plain objects (usually builder functions) registered where they are defined::

    BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")

    @BACKBONES.register                       # the function's name, minus a ``build_`` prefix
    def vit_b16(**kwargs) -> nn.Module: ...

    @BACKBONES.register("x3d_s")              # an explicit name
    def _x3d_s(**kwargs) -> nn.Module: ...

    BACKBONES.get("vit_b16")                  # UnknownNameError (a KeyError) for a name it does not hold
    BACKBONES.names("vit_*")                  # sorted, fnmatch pattern

Duplicate policy: registering a *different* object under a name already taken raises ``ValueError``;
registering the same object again (a module imported twice) is a no-op.

Registries never import their plugins: the module that defines a registry sits below the modules that fill it,
and the package (or ``factory`` module) above both imports the built-ins, so there is no import cycle. A
registry can be given a ``loader`` (a function that imports the built-in plugins) by the package that owns it;
it runs once, before the first lookup.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that a registry does not hold; the message lists the known names and the closest match."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = ", ".join(known) if known else "none registered"
        self.message = f"unknown {kind} {name!r}{hint}; known: {listing}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return self.message


class Registry(Generic[T]):
    """Names -> objects of one kind (``kind`` names it in error messages: "unknown backbone 'vit_x'")."""

    def __init__(self, kind: str, *, loader: Callable[[], object] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None

    # ------------------------------------------------------------------------------------------ register

    @overload
    def register(self, name: str, obj: None = None) -> Callable[[T], T]: ...

    @overload
    def register(self, name: T, obj: None = None) -> T: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str | T, obj: T | None = None) -> T | Callable[[T], T]:
        """``@reg.register`` (under the object's ``__name__`` minus ``build_``), ``@reg.register("name")``, or
        ``reg.register("name", obj)``."""
        if obj is not None:
            return self._add(str(name), obj)
        if isinstance(name, str):
            key = name
            return lambda o: self._add(key, o)
        return self._add(name.__name__.removeprefix("build_"), name)

    def _add(self, name: str, obj: T) -> T:
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind}: a registered name must be a non-empty string, got {name!r}")
        old = self._items.get(name)
        if old is not None and old is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({_where(old)} and {_where(obj)})")
        self._items[name] = obj
        return obj

    def set_loader(self, loader: Callable[[], object]) -> None:
        """Called by the package that owns the built-in plugins: ``loader()`` imports them, once."""
        self._loader, self._loaded = loader, False

    # ------------------------------------------------------------------------------------------- look up

    def _load(self) -> None:
        if not self._loaded and self._loader is not None:
            self._loaded = True
            self._loader()

    def get(self, name: str) -> T:
        """The object registered as ``name``; :class:`UnknownNameError` lists the known names."""
        self._load()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self.names()) from None

    __getitem__ = get

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching an fnmatch ``pattern``, sorted."""
        self._load()
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"


def _where(obj: object) -> str:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(obj)
