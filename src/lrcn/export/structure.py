"""Nested call values <-> flat named tensors: how a model method's arguments and results cross
into an exported graph, whose inputs and outputs are flat lists of named tensors.

A value is a tensor, ``None``, a plain constant (int, float, bool, str: fixed when the graph
is exported), a dict of values (a decoder's state) or a tuple of values (a NamedTuple keeps its
field names). Its *spec* is a JSON-able description, stored in ``export.json``, from which the
engine rebuilds the same nesting from the runtime's outputs.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from torch import Tensor

Spec = dict[str, Any]

__all__ = ["Spec", "StructureError", "flatten", "rebuild", "same_structure"]


class StructureError(ValueError):
    """A call whose arguments do not have the structure the graph was exported with."""


def flatten(value: Any, name: str) -> tuple[Spec, list[tuple[str, Tensor]]]:
    """``value``'s spec and its tensors in order, named by their path (``state.h``)."""
    if isinstance(value, Tensor):
        return {"t": "tensor", "name": name}, [(name, value)]
    if value is None:
        return {"t": "none"}, []
    if isinstance(value, bool | int | float | str):
        return {"t": "const", "value": value}, []
    if isinstance(value, Mapping):
        items, flat = {}, []
        for key in value:
            items[str(key)], inner = flatten(value[key], f"{name}.{key}")
            flat += inner
        return {"t": "dict", "items": items}, flat
    if isinstance(value, tuple | list):
        fields = list(getattr(value, "_fields", [])) or None
        specs, flat = [], []
        for i, item in enumerate(value):
            spec, inner = flatten(item, f"{name}.{fields[i] if fields else i}")
            specs.append(spec)
            flat += inner
        typename = type(value).__name__ if fields else None
        return {"t": "tuple", "type": typename, "fields": fields, "items": specs}, flat
    raise StructureError(f"{name}: cannot export a {type(value).__name__}")


def rebuild(spec: Spec, tensors: Mapping[str, Tensor] | Iterator[Tensor]) -> Any:
    """The value ``spec`` describes, its tensors taken by name (a mapping) or in order."""
    kind = spec["t"]
    if kind == "tensor":
        return tensors[spec["name"]] if isinstance(tensors, Mapping) else next(tensors)
    if kind == "none":
        return None
    if kind == "const":
        return spec["value"]
    if kind == "dict":
        return {key: rebuild(item, tensors) for key, item in spec["items"].items()}
    items = [rebuild(item, tensors) for item in spec["items"]]
    if spec["fields"]:
        return _named(spec["type"], tuple(spec["fields"]))(*items)
    return tuple(items)


@cache
def _named(typename: str, fields: tuple[str, ...]) -> type:
    """A NamedTuple stand-in with the exported one's name and fields (``out.probs`` works)."""
    return namedtuple(typename, fields)


def same_structure(expected: Spec, given: Spec, where: str) -> None:
    """Raise :class:`StructureError` naming the first place ``given`` differs: another kind,
    other dict keys, or a constant other than the exported one (a graph bakes it in)."""
    if expected["t"] != given["t"]:
        raise StructureError(f"{where}: a {given['t']}, the graph takes a {expected['t']}")
    if expected["t"] == "const" and expected["value"] != given["value"]:
        raise StructureError(
            f"{where}={given['value']!r}, but the graph was exported with "
            f"{where}={expected['value']!r} (fixed in the exported graph; export again)"
        )
    if expected["t"] == "dict":
        if set(expected["items"]) != set(given["items"]):
            raise StructureError(f"{where}: keys {sorted(given['items'])}, "
                                 f"the graph takes {sorted(expected['items'])}")  # fmt: skip
        for key, item in expected["items"].items():
            same_structure(item, given["items"][key], f"{where}.{key}")
    if expected["t"] == "tuple":
        if len(expected["items"]) != len(given["items"]):
            raise StructureError(f"{where}: {len(given['items'])} items, "
                                 f"the graph takes {len(expected['items'])}")  # fmt: skip
        for i, (a, b) in enumerate(zip(expected["items"], given["items"], strict=True)):
            same_structure(a, b, f"{where}.{i}")
