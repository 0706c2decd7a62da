"""The one validation mechanism for config files (training configs and study specs): pydantic v2 models
that forbid unknown keys and take no implicit conversions, and one formatter that turns pydantic's errors
into a `ConfigError` naming the file and the key path (`studies/x.yaml: budget.trials: must be >= 1, got 0`).

A model's own checks raise `ValueError` (reported at the field or section they validate) or
`field_error(key, msg)` (reported at a sub-key, e.g. a cross-field check of a section).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from pixelcam.errors import ConfigError


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, types are strict (an int is accepted where a
    number is expected, nothing else is converted)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)


M = TypeVar("M", bound=BaseModel)


def field_error(key: str, message: str) -> PydanticCustomError:
    """An error of a section's sub-key, raised from a section's model validator."""
    return PydanticCustomError("field", "{message}", {"field": key, "message": message})


def one_of(value: Any, allowed: Any) -> Any:
    """`value` when it is one of `allowed` (a registry's names, a fixed tuple), else the ValueError every
    choice field reports: "unknown value 'x'; expected one of [...]"."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"unknown value {value!r}; expected one of {allowed}")
    return value


def parse(cls: type[M], raw: Any, where: str) -> M:
    """Validate `raw` (a mapping) as `cls`; ConfigError naming `where` and the key path otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, cls, where)) from None


def format_errors(exc: ValidationError, cls: type[BaseModel], where: str) -> str:
    """The first problem of a ValidationError as one line (unknown keys of one section are grouped)."""
    errors = exc.errors(include_url=False)
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        parent = tuple(extra[0]["loc"][:-1])
        names = sorted(str(e["loc"][-1]) for e in extra if tuple(e["loc"][:-1]) == parent)
        known = sorted(_fields_at(cls, parent))
        return _line(where, parent, f"unknown key(s) {names}; expected some of {known}")
    e = errors[0]
    loc = tuple(e["loc"])
    ctx = e.get("ctx") or {}
    if e["type"] == "field":
        return _line(where, loc + (ctx["field"],), ctx["message"])
    return _line(where, loc, _message(e, cls, loc))


def _line(where: str, loc: tuple, message: str) -> str:
    key = ".".join(str(p) for p in loc)
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


_TYPE_NAMES = {
    "int": "an integer",
    "bool": "true or false",
    "float": "a number",
    "string": "a string",
    "dict": "a mapping",
    "list": "a list",
    "model": "a mapping",
    "model_attributes": "a mapping",
}


def _message(e: dict[str, Any], cls: type[BaseModel], loc: tuple) -> str:
    kind, value = e["type"], e.get("input")
    if kind.endswith(("_type", "_parsing")) or kind in ("model_type", "model_attributes_type"):
        what = _TYPE_NAMES.get(kind.rsplit("_", 1)[0], kind.rsplit("_", 1)[0])
        return f"expected {what}, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {_bounds(cls, loc)}, got {value!r}"
    if kind == "missing":
        return "is required"
    if kind in ("value_error", "assertion_error"):
        return str(e["ctx"]["error"])
    return e["msg"]


def _bounds(cls: type[BaseModel], loc: tuple) -> str:
    """A field's numeric constraints as text: `> 0`, `>= 1`, or an interval `in (0, 1]`."""
    field = _field(cls, loc)
    found: dict[str, Any] = {}
    for m in _constraints(field):
        for k in ("gt", "ge", "lt", "le"):
            if getattr(m, k, None) is not None:
                found[k] = getattr(m, k)
    lo = ("(", found["gt"]) if "gt" in found else ("[", found["ge"]) if "ge" in found else None
    hi = (found["lt"], ")") if "lt" in found else (found["le"], "]") if "le" in found else None
    if lo and hi:
        return f"in {lo[0]}{lo[1]:g}, {hi[0]:g}{hi[1]}"
    if lo:
        return f"{'>' if lo[0] == '(' else '>='} {lo[1]:g}"
    if hi:
        return f"{'<' if hi[1] == ')' else '<='} {hi[0]:g}"
    return "in range"


def _constraints(field: Any) -> list[Any]:
    """A field's constraint objects, also those inside an optional (`Annotated[int, Field(ge=1)] | None`)."""
    import typing

    if field is None:
        return []
    items = list(field.metadata)
    for arg in typing.get_args(field.annotation):
        items += list(getattr(arg, "__metadata__", ()))
        items += [c for m in getattr(arg, "__metadata__", ()) for c in getattr(m, "metadata", [])]
    return items


def _field(cls: type[BaseModel], loc: tuple):
    """The FieldInfo at `loc` (walking nested models; optional/union wrappers and numbers skipped)."""
    model: Any = cls
    info = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return info
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = _model_of(info.annotation)
    return info


def _model_of(annotation: Any) -> Any:
    import typing

    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    if not loc:
        return list(cls.model_fields)
    info = _field(cls, loc)
    model = _model_of(info.annotation) if info is not None else None
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


MAX_YAML_BYTES = 1 << 20  # a config or spec is a page of text; 1 MiB is far past any real one


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that repeats a key (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """Parsed YAML text (duplicate keys refused); ConfigError naming `where` when it is not valid YAML."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        at = f"line {exc.problem_mark.line + 1}: " if exc.problem_mark is not None else ""
        raise ConfigError(
            f"{where}: {at}not valid YAML ({exc.context or ''} {exc.problem})".replace("( ", "(")
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None


def read_yaml(path: str | os.PathLike, what: str = "config file") -> Any:
    """Parsed YAML of a file; ConfigError naming the file when it is missing, a directory, unreadable, larger
    than MAX_YAML_BYTES, not UTF-8 or not YAML (a key given twice included)."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{p}: is a directory; expected a {what} (YAML)")
        if st.st_size > MAX_YAML_BYTES:
            raise ConfigError(f"{p}: {st.st_size} bytes; a {what} is at most {MAX_YAML_BYTES} bytes (1 MiB)")
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    except PermissionError:
        raise ConfigError(f"{p}: cannot read the {what} (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    return parse_yaml(text, str(p))
