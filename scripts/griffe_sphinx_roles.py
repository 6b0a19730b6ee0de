"""Griffe extension of the docs site (mkdocs.yml): the docstrings' Sphinx roles (``:class:`~a.B```,
``:meth:`close```, ...) become links in the API reference when the target is on a page of it, and code
otherwise, instead of showing as raw ``:class:`` text.

A target is resolved from the object whose docstring names it (``:meth:`close``` in a class is that
class's ``close``); the link is an optional cross-reference, so a target outside the reference (an
internal module) renders as code without failing the strict build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj):`(~?)\.?([\w.]+?)(\(\))?`")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(lambda m, o=obj: _link(o, m), obj.docstring.value)


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    short, target, call = match.group(1) == "~", match.group(2), match.group(3) or ""
    scope = obj if obj.is_class or obj.is_module else obj.parent
    try:
        path = scope.resolve(target.split(".")[0]) if scope is not None else target
        path = ".".join([path, *target.split(".")[1:]])
    except griffe.NameResolutionError:
        path = target
    title = (target.rsplit(".", 1)[-1] if short else target) + call
    return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'
