"""Config fields that carry their own rules, and the one checker that applies them.

A field's type hint says what a value may be (``bool``, ``int``, ``float``, ``str``, ``list[...]``,
``Literal[...]`` choices, ``X | None``); :func:`setting` adds a range (``min``, ``above``,
``max``), a list ``length``, a string ``pattern`` or a ``check`` function. :func:`checked_value`
returns the value in its field's type or raises a :class:`~daaf.errors.ConfigError` of one line
naming the key, the value (shortened: :func:`daaf.errors.short_repr`) and what is allowed.

Rules between fields of one section (``min_field``: at least that field, ``above_field``: more
than it; element-wise for lists) can only be checked once every file and override is read:
:func:`check_relations` does that.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from daaf.errors import MAX_SHOWN, ConfigError, short_repr, shorten

# rule -> (what it asks, in words; the test a value passes against its sibling field's value)
RELATIONS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "min_field": ("at least", operator.ge),
    "above_field": ("more than", operator.gt),
}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    min: float | None = None,
    above: float | None = None,
    max: float | None = None,
    length: int | None = None,
    pattern: str | None = None,
    allowed: str | None = None,
    check: Callable[[Any], Any] | None = None,
    min_field: str | tuple[str, ...] | None = None,
    above_field: str | None = None,
) -> Any:
    """A dataclass field with its rules. Numbers (also inside lists) lie in [min, max] and above
    ``above``; ``pattern`` strings are described to users by ``allowed``; ``check(value)``
    raises ValueError for what the type cannot say. ``min_field`` / ``above_field`` name sibling
    fields the value must be at least / more than (a list: one field per element)."""
    rules = {
        "min": min,
        "above": above,
        "max": max,
        "length": length,
        "pattern": pattern,
        "allowed": allowed,
        "check": check,
        "min_field": min_field,
        "above_field": above_field,
    }
    metadata = {k: v for k, v in rules.items() if v is not None}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class _Invalid(Exception):
    pass


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range(rules: dict[str, Any]) -> str:
    low, above, high = rules.get("min"), rules.get("above"), rules.get("max")
    if high is not None and (low is not None or above is not None):
        return f" in {'[' if above is None else '('}{low if above is None else above}, {high}]"
    if above is not None:
        return f" > {above}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def describe(hint: Any, rules: dict[str, Any], top: bool = True) -> str:
    """What a field accepts, in words: ``an integer >= 1``, ``one of bot, trinet``, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        words = [describe(a, rules, top) for a in args if a is not type(None)]
        return " or ".join((["null"] if type(None) in args else []) + words)
    if origin is Literal:
        return ("one of " if len(args) > 1 else "") + ", ".join(str(a) for a in args)
    if origin is list:
        size = f"{rules['length']} " if top and "length" in rules else ""
        noun, _, rest = re.sub(r"^an? ", "", describe(args[0], rules, top=False)).partition(" ")
        return f"a list of {size}{noun}s {rest}".rstrip()
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer" + _range(rules)
    if hint is float:
        return "a number" + _range(rules)
    return rules.get("allowed", "a string")


def _convert(hint: Any, value: Any, rules: dict[str, Any], top: bool = True) -> Any:
    """``value`` as ``hint`` says, or _Invalid. YAML reads 1e-4 as a string and 7 as an int."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _convert(arg, value, rules, top)
            except _Invalid:
                pass
        raise _Invalid
    if hint is type(None):
        if value is None:
            return None
        raise _Invalid
    if origin is Literal:
        for choice in args:  # 7 -> "7" for string choices; never True for 1
            if type(choice) is type(value) and choice == value:
                return choice
            if isinstance(choice, str) and isinstance(value, int) and str(value) == choice:
                return choice
        raise _Invalid
    if origin is list:
        if not isinstance(value, list) or (top and len(value) != rules.get("length", len(value))):
            raise _Invalid
        return [_convert(args[0], item, rules, top=False) for item in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _in_range(value, rules)
        raise _Invalid
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _Invalid from None
        if _is_number(value) and math.isfinite(value):
            return _in_range(float(value), rules)
        raise _Invalid
    if hint is str:
        if isinstance(value, str) and re.fullmatch(rules.get("pattern", ".*"), value):
            return value
        raise _Invalid
    raise TypeError(f"config fields cannot have type {hint!r}")


def _in_range(value: float, rules: dict[str, Any]) -> float:
    low, above, high = rules.get("min"), rules.get("above"), rules.get("max")
    if (
        (low is not None and value < low)
        or (above is not None and value <= above)
        or (high is not None and value > high)
    ):
        raise _Invalid
    return value


def checked_value(cls: type, name: str, value: Any, key: str, where: str) -> Any:
    """``value`` for field ``name`` of dataclass ``cls`` in its type; ConfigError otherwise.

    ``key`` is the dotted name users write (``train.epochs``); ``where`` says which file or
    override the value came from.
    """
    hint = typing.get_type_hints(cls)[name]
    rules = dict(next(f for f in dataclasses.fields(cls) if f.name == name).metadata)
    try:
        value = _convert(hint, value, rules)
    except _Invalid:
        raise ConfigError(
            f"{where}: {key} must be {describe(hint, rules)}, got {short_repr(value)}"
        ) from None
    if "check" in rules:
        try:
            rules["check"](value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {shorten(str(exc), 2 * MAX_SHOWN)}") from None
    return value


def set_where(keys: Sequence[str], sources: dict[str, str]) -> str:
    """Where ``keys`` were set last, each file or override once ("defaults" if nowhere)."""
    return ", ".join(dict.fromkeys(sources[k] for k in keys if k in sources)) or "defaults"


def check_relations(section: Any, prefix: str, sources: dict[str, str]) -> None:
    """ConfigError unless each field of dataclass ``section`` with a ``min_field`` or
    ``above_field`` rule is at least / more than the sibling field(s) it names (None: no rule).

    ``prefix`` is the section's dotted name (``data.``); ``sources[key]`` says which file or
    override set ``key`` last: the error names where the keys involved were set.
    """
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        for rule in RELATIONS.keys() & f.metadata.keys():
            words, passes = RELATIONS[rule]
            names = (f.metadata[rule],) if isinstance(f.metadata[rule], str) else f.metadata[rule]
            bounds = [getattr(section, name) for name in names]
            values = value if isinstance(value, list) else [value]
            if value is None or all(map(passes, values, bounds)):
                continue
            keys = [prefix + name for name in (f.name, *names)]
            raise ConfigError(
                f"{set_where(keys, sources)}: {keys[0]} must be {words} {', '.join(keys[1:])} "
                f"({bounds[0] if len(bounds) == 1 else bounds}), got {short_repr(value)}"
            )


def merge_values(
    cfg: Any, values: dict[str, Any], where: str, sources: dict[str, str], prefix: str = ""
) -> None:
    """Set ``values`` on dataclass ``cfg`` recursively, each checked against its field's rules,
    and record ``where`` each key came from in ``sources``; unknown keys and bad values raise a
    ConfigError naming ``where`` and the key."""
    known = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in known:
            section = f"{prefix.rstrip('.')}: " if prefix else ""
            raise ConfigError(
                f"{where}: {section}unknown config key {short_repr(key)}; "
                f"known keys: {', '.join(known)}"
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where}: {prefix}{key} must be a mapping, got {short_repr(value)}"
                )
            merge_values(current, value, where, sources, f"{prefix}{key}.")
        else:
            setattr(cfg, key, checked_value(type(cfg), key, value, prefix + key, where))
            sources[prefix + key] = where
