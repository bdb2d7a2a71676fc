"""A choice field's label, as Django's ``Model.get_FOO_display()`` gives it.

Django's generated method turns the field's whole list of choices into a new dict on every
call (``dict(make_hashable(field.flatchoices))``): at 50 rows with two or three choice
labels each, that was 0.5-1 ms of an admin list (bench/README.md, "Pages"). ``display``
gives the same answer from a dict built once per field. Choices given as a callable, which
may change between calls, keep Django's path.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from django.db import models
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable

__all__ = ["display", "label"]


@functools.cache
def _labels(field: models.Field[Any, Any]) -> dict[Any, Any] | None:
    from django.utils.choices import CallableChoiceIterator

    if isinstance(field.choices, CallableChoiceIterator):
        return None
    return dict(make_hashable(field.flatchoices))


def label(field: models.Field[Any, Any], value: Any) -> Any:
    """The label of ``value`` among ``field``'s choices: the value itself when it has none
    (Django's ``_get_FIELD_display``)."""
    labels = _labels(field)
    if labels is None:
        labels = dict(make_hashable(field.flatchoices))
    return force_str(labels.get(make_hashable(value), value), strings_only=True)


def display(obj: models.Model, name: str) -> Any:
    """``obj.get_<name>_display()``."""
    field = cast("models.Field[Any, Any]", obj._meta.get_field(name))
    return label(field, getattr(obj, field.attname))
