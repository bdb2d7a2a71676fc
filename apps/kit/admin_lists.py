"""Changelist rows rendered in Python, once per column rather than once per cell.

Django's ``items_for_result`` works out, for every cell of every row, what the column is
(``lookup_field`` asks the model's options for the name and catches the exception for every
callable column), the empty value, whether the cell links, and for every linked cell
reverses the change URL and resolves it again to merge the preserved filters. At 100 rows
of 10-12 columns that was over half of a changelist's time. ``fast_results`` decides all of
that once per column and leaves per cell only what depends on the row: the value, and its
text exactly as Django formats it. Each row is handed to the template as one string, so
``change_list_results.html`` prints it without a variable lookup per cell.

The markup is Django's, character for character (tests compare the two for every admin
changelist of the project). Changelists with editable rows (``list_editable``) or opened as a
popup keep Django's own rendering.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin import utils as admin_utils
from django.contrib.admin.templatetags.admin_list import (  # type: ignore[attr-defined]
    ResultList,
    _boolean_icon,
    _coerce_field_name,
    result_headers,
    result_hidden_fields,
    results,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    display_for_field,
    display_for_value,
    lookup_field,
)
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.dateformat import format as dateformat_format
from django.utils.dateformat import re_escaped, re_formatchars
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.formats import get_format
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from .memo import frozen, memo
from .widgets import MemoizedHiddenInput, MemoizedSelect

# How the admin finds a column's model field (private, but what items_for_result asks).
_get_non_gfk_field = admin_utils._get_non_gfk_field  # type: ignore[attr-defined]
# What DateFormat asks before it names a time's zone (private, but the rule it applies).
_ambiguous_or_imaginary = timezone._datetime_ambiguous_or_imaginary  # type: ignore[attr-defined]
# What display_for_field puts a datetime through before formatting it (untyped in stubs).
template_localtime = timezone.template_localtime  # type: ignore[attr-defined]
# A primary key stand-in for reversing the change URL once; letters only, so neither the
# admin's quote() nor URL quoting changes it.
_PK = "jitportalpk"
_DATE_OR_TIME = (datetime.date, datetime.time)
_NOWRAP_FIELDS = (models.DateField, models.TimeField, models.ForeignKey)
# Fields display_for_field shows as str(value) (exact classes: subclasses may differ).
_TEXT_FIELDS = {models.CharField, models.TextField, models.SlugField, models.EmailField}
_INTEGER_FIELDS = {
    models.IntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
    models.SmallIntegerField,
    models.BigIntegerField,
}

Cell = Callable[[Any], str]


class _ChangeUrl:
    """The change URL of any row, with the changelist's preserved filters, from one reverse."""

    def __init__(self, cl: ChangeList) -> None:
        self.cl = cl
        self.head: str | None = ""
        self.tail = ""
        self.linkable = True
        try:
            url = self._django(_PK)
        except NoReverseMatch:
            self.linkable = False
            return
        head, found, tail = url.partition(_PK)
        if not found:  # pragma: no cover - a change URL that does not contain its id
            self.head = None
            return
        self.head, self.tail = head, tail

    def _django(self, pk: Any) -> str:
        cl = self.cl
        url = cl.url_for_result(cast(Any, _Pk(cl.pk_attname, pk)))
        return add_preserved_filters(
            {"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url
        )

    def __call__(self, pk: Any) -> str:
        if self.head is not None and isinstance(pk, int) and not isinstance(pk, bool):
            return f"{self.head}{pk}{self.tail}"
        return self._django(pk)


class _Pk:
    """Just enough of a row for ``ChangeList.url_for_result``."""

    def __init__(self, attname: str, pk: Any) -> None:
        setattr(self, attname, pk)


class _DateTimeFormat:
    """``dateformat.format(value, format)`` for datetimes, with the format split and the day
    and month names translated once per list instead of once per cell (at 50 rows of four
    time columns Django's formatter was a third of the grant list's time). Formats with a
    character it does not know go through Django's own formatter."""

    KNOWN = frozenset("DjMYHiT")

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        parts = re_formatchars.split(fmt)
        self.fast = all(char in self.KNOWN for char in parts[1::2])
        # (True, format character) or (False, literal text), in order.
        self.pieces = [
            (bool(i % 2), part if i % 2 else re_escaped.sub(r"\1", part))
            for i, part in enumerate(parts)
            if part
        ]
        self.days = [str(WEEKDAYS_ABBR[day]) for day in range(7)]
        self.months = {month: str(MONTHS_3[month]).title() for month in range(1, 13)}

    def zone(self, value: datetime.datetime) -> str:
        # DateFormat's: the value's zone (the default zone for a naive value), none when the
        # time is ambiguous or imaginary there (Django's own test of that).
        tz = value.tzinfo if timezone.is_aware(value) else timezone.get_default_timezone()
        if tz is None or _ambiguous_or_imaginary(value, tz):
            return ""
        return str(tz.tzname(value))

    def __call__(self, value: datetime.datetime) -> str:
        if not self.fast:
            return dateformat_format(value, self.fmt)
        out = []
        for char, text in self.pieces:
            if not char:
                out.append(text)
            elif text == "D":
                out.append(self.days[value.weekday()])
            elif text == "j":
                out.append(str(value.day))
            elif text == "M":
                out.append(self.months[value.month])
            elif text == "Y":
                out.append(f"{value.year:04d}")
            elif text == "H":
                out.append(f"{value.hour:02d}")
            elif text == "i":
                out.append(f"{value.minute:02d}")
            else:  # "T"
                out.append(self.zone(value))
        return "".join(out)


_DATETIME_FORMATS: dict[tuple[str, str | None], _DateTimeFormat] = {}


def _datetime_format(fmt: str) -> _DateTimeFormat:
    """The formatter of ``fmt`` in the active language, made once per format and language
    (its 19 day and month names translated once, not once per column of every list)."""
    formatter: _DateTimeFormat = memo(
        _DATETIME_FORMATS, (fmt, get_language()), lambda: _DateTimeFormat(fmt)
    )
    return formatter


def _blank(value: Any) -> Any:
    """What ``items_for_result`` does to each looked-up value first: blank text is empty."""
    if isinstance(value, str) and value.strip() == "":
        return ""
    return value


def _icons() -> dict[Any, str]:
    return {value: _boolean_icon(value) for value in (True, False, None)}


def _value_cell(
    field_name: Any, attr: Any, get: Callable[[Any], Any], empty: str, classes: str
) -> Callable[[Any], tuple[str, Any]]:
    """A column without a model field: a model admin method, a callable or an attribute."""
    empty = getattr(attr, "empty_value_display", empty)
    boolean = getattr(attr, "boolean", False)
    if isinstance(attr, property) and hasattr(attr, "fget"):
        boolean = getattr(attr.fget, "boolean", False)
    if field_name == "action_checkbox":
        classes = ' class="action-checkbox"'
    icons = _icons() if boolean else None

    plain_ints = not settings.USE_THOUSAND_SEPARATOR

    def cell(obj: Any) -> tuple[str, Any]:
        value = _blank(get(obj))
        if icons is not None:
            return classes, icons[value]
        kind = type(value)
        # display_for_value's answer for the common kinds, without its chain of checks:
        # text as it is (empty text: the empty value), an int as number_format writes it.
        if kind is str or kind is SafeString:
            return classes, value if value != "" else empty
        if kind is int and plain_ints:
            return classes, SafeString(value)
        text = display_for_value(value, empty, False)
        if isinstance(value, _DATE_OR_TIME):
            return classes[:-1] + ' nowrap"', text
        return classes, text

    return cell


def _field_cell(
    field: models.Field[Any, Any], empty: str, classes: str, linked: bool
) -> Callable[[Any], tuple[str, Any]]:
    if isinstance(field, _NOWRAP_FIELDS):
        classes = classes[:-1] + ' nowrap"'
    name = field.name
    if isinstance(field.remote_field, models.ManyToOneRel):

        def related(obj: Any) -> tuple[str, Any]:
            value = getattr(obj, name)
            return classes, empty if value is None else value

        return related
    choices = getattr(field, "flatchoices", None)
    if choices:
        labels = dict(choices)

        def choice(obj: Any) -> tuple[str, Any]:
            value = _blank(getattr(obj, name))
            try:
                return classes, labels.get(value, empty)
            except TypeError:  # an unhashable value: Django's own path says how
                return classes, display_for_field(value, field, empty, avoid_link=linked)

        return choice
    if isinstance(field, models.BooleanField):
        icons = _icons()
        return lambda obj: (classes, icons[getattr(obj, name)])

    empty_values = field.empty_values
    if type(field) in _TEXT_FIELDS:
        # display_for_field's path for these: the empty value, else str(value).
        def text(obj: Any) -> tuple[str, Any]:
            value = _blank(getattr(obj, name))
            return classes, empty if value in empty_values else str(value)

        return text
    if type(field) is models.DateTimeField:
        # localize(template_localtime(value)), with the format looked up once per list.
        datetime_format = _datetime_format(get_format("DATETIME_FORMAT"))

        def moment(obj: Any) -> tuple[str, Any]:
            value = getattr(obj, name)
            if value in empty_values:
                return classes, empty
            if not isinstance(value, datetime.datetime):  # pragma: no cover - not a datetime
                return classes, display_for_field(value, field, empty, avoid_link=linked)
            return classes, datetime_format(template_localtime(value))

        return moment
    if type(field) in _INTEGER_FIELDS and not settings.USE_THOUSAND_SEPARATOR:
        # number_format of an int without grouping is mark_safe(value): SafeString(value).
        def number(obj: Any) -> tuple[str, Any]:
            value = getattr(obj, name)
            if value in empty_values:
                return classes, empty
            if type(value) is not int:  # pragma: no cover - not an int
                return classes, display_for_field(value, field, empty, avoid_link=linked)
            return classes, SafeString(value)

        return number

    def plain(obj: Any) -> tuple[str, Any]:
        value = _blank(getattr(obj, name))
        return classes, display_for_field(value, field, empty, avoid_link=linked)

    return plain


def _column(
    cl: ChangeList, index: int, field_name: Any, empty: str, linked: bool
) -> Callable[[Any], tuple[str, Any]]:
    classes = f' class="field-{_coerce_field_name(field_name, index)}"'
    model_admin = cl.model_admin
    field = None
    if not callable(field_name):
        try:
            field = _get_non_gfk_field(cl.lookup_opts, field_name)
        except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
            field = None
    if field is not None and not field.auto_created:
        return _field_cell(field, empty, classes, linked)
    if field is not None:  # an automatic field (the primary key): shown as a plain value
        return _value_cell(field_name, None, lambda obj: getattr(obj, field_name), empty, classes)
    if callable(field_name):
        return _value_cell(field_name, field_name, field_name, empty, classes)
    if hasattr(model_admin, field_name) and field_name != "__str__":
        method = getattr(model_admin, field_name)
        return _value_cell(field_name, method, method, empty, classes)

    # A model attribute, property or method, or a dotted lookup: Django's lookup per row.
    def attribute(obj: Any) -> tuple[str, Any]:
        _, attr, value = lookup_field(field_name, obj, model_admin)
        return _value_cell(field_name, attr, lambda _: value, empty, classes)(obj)

    return attribute


def _cells(cl: ChangeList) -> Callable[[Any], str]:
    """The function that renders one row of ``cl`` as Django's ``items_for_result`` would."""
    empty = cl.model_admin.get_empty_value_display()
    links = cl.list_display_links
    change_url = _ChangeUrl(cl)
    parts: list[tuple[Callable[[Any], tuple[str, Any]], str | None, str]] = []
    first = True
    for index, field_name in enumerate(cl.list_display):
        linked = links is not None and (
            (first and not links) or field_name in links  # Django's link_in_col
        )
        tag = None
        if linked:
            tag = "th" if first else "td"
            first = False
        # What a cell whose value raised ObjectDoesNotExist keeps: its "field-<name>" class.
        plain = f' class="field-{_coerce_field_name(field_name, index)}"'
        parts.append((_column(cl, index, field_name, empty, linked), tag, plain))
    pk_attname = cl.pk_attname

    def row(obj: Any) -> str:
        out = []
        for cell, tag, plain in parts:
            try:
                classes, text = cell(obj)
            except ObjectDoesNotExist:
                classes, text = plain, empty
            shown = conditional_escape(text)
            if tag is None:
                out.append(f"<td{classes}>{shown}</td>")
            elif change_url.linkable:
                url = escape(change_url(getattr(obj, pk_attname)))
                out.append(f'<{tag}{classes}><a href="{url}">{shown}</a></{tag}>')
            else:
                out.append(f"<{tag}{classes}>{shown}</{tag}>")
        return "".join(out)

    return row


def fast_results(cl: ChangeList) -> Iterator[ResultList]:
    """Django's ``results(cl)``, each row one string (see the module's docstring)."""
    if cl.formset or cl.is_popup:
        yield from results(cl)
        return
    row = _cells(cl)
    for obj in cl.result_list:
        yield ResultList(None, [SafeString(row(obj))])


# Filter templates that read only their title and choices (not ``spec``), so that the same
# title and choices give the same HTML: Django's and the autocomplete filter's.
_PURE_FILTER_TEMPLATES = frozenset({"admin/filter.html", "admin/kit/autocomplete_filter.html"})
_FILTERS: dict[Any, str] = {}


class FastResultsChangeList(ChangeList):
    """A changelist whose rows are rendered by ``fast_results``; its template
    (``admin/fast_change_list.html``) asks for ``cl.result_list_context`` and
    ``cl.rendered_filters``."""

    def rendered_filters(self) -> list[SafeString]:
        """What Django's ``{% admin_list_filter cl spec %}`` renders for each filter, in
        order. A filter whose template reads only its title and choices is rendered once per
        distinct title, choices and language in a process: the sidebar's seven templates
        were 1-1.5 ms of every list view for the same few links."""
        out = []
        for spec in self.filter_specs:
            choices = list(spec.choices(self))
            template_name = spec.template

            def render(spec: Any = spec, choices: list[Any] = choices) -> str:
                context = {"title": spec.title, "choices": choices, "spec": spec}
                return str(get_template(spec.template).render(context))

            if template_name in _PURE_FILTER_TEMPLATES:
                key = (template_name, frozen(spec.title), frozen(choices), get_language())
                out.append(SafeString(memo(_FILTERS, key, render)))
            else:
                out.append(SafeString(render()))
        return out

    def result_list_context(self) -> dict[str, Any]:
        """What Django's ``{% result_list cl %}`` tag gives its template, plus ``body``: the
        rows written out, each with its detail line when the model admin has ``list_detail``
        (a method that returns the HTML of one object's detail line)."""
        headers = list(result_headers(self))
        rows = list(fast_results(self))
        detail = getattr(self.model_admin, "list_detail", None)
        own = not (self.formset or self.is_popup)
        with_details = (
            [
                (row, conditional_escape(detail(obj)))
                for row, obj in zip(rows, self.result_list, strict=True)
            ]
            if detail is not None and own
            else None
        )
        return {
            "result_hidden_fields": list(result_hidden_fields(self)),
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": rows,
            # The table's body as the templates' row loop writes it (None: Django's rows,
            # with their forms, are left to Django's template).
            "body": _body(rows, with_details, len(headers)) if own else None,
        }


def _body(
    rows: list[ResultList], with_details: list[tuple[ResultList, SafeString]] | None, columns: int
) -> SafeString:
    """The ``<tbody>`` content: character for character what the row loop of Django's
    ``admin/change_list_results.html`` writes for rows without forms, each row followed on
    its line by its detail row when the model admin has ``list_detail``. Run by the
    template engine, that loop cost 1-2.5 ms of a 50-row list's CPU
    (bench/results/2026-12-07-web-prepared.md); test_admin_lists compares the rows with
    Django's own and the detail rows with ``list_detail``."""
    if with_details is None:
        return SafeString("".join(f"\n\n<tr>{''.join(row)}</tr>\n" for row in rows))
    span = columns - 1
    return SafeString(
        "".join(
            f'\n\n<tr>{"".join(row)}</tr><tr class="detail-row"><td></td>'
            f'<td colspan="{span}">{detail}</td></tr>\n'
            for row, detail in with_details
        )
    )


class RenderedMedia:
    """A ``forms.Media`` already rendered: what a changelist template asks of its ``media``
    (``{{ media.css }}``, ``{{ media.js }}``, ``{{ media }}``), as strings."""

    __slots__ = ("_all", "css", "js")

    def __init__(self, media: forms.Media) -> None:
        self.css = SafeString(media["css"].render())
        self.js = SafeString(media["js"].render())
        self._all = SafeString(media.render())

    def __getitem__(self, name: str) -> SafeString:
        if name == "css":
            return self.css
        if name == "js":
            return self.js
        raise KeyError(name)

    def __str__(self) -> SafeString:
        return self._all

    __html__ = __str__


_MEDIA: dict[Any, RenderedMedia] = {}


def rendered_media(media: forms.Media) -> RenderedMedia:
    """``media`` rendered once per distinct list of assets in a process. Rendering merges the
    lists in order and asks the static files storage for each file's hashed name: 0.5-1 ms
    of every changelist's CPU for the same few lines (bench/README.md, "Pages")."""
    lists = (media._css_lists, media._js_lists)  # type: ignore[attr-defined]
    rendered: RenderedMedia = memo(
        _MEDIA, (repr(lists), settings.STATIC_URL), lambda: RenderedMedia(media)
    )
    return rendered


class ActionForm(helpers.ActionForm):
    """Django's action form, its two widgets rendered once per set of choices: through the
    form templates they cost 0.5-1 ms of every changelist (bench/README.md, "Pages")."""

    action = forms.ChoiceField(
        label=helpers.ActionForm.base_fields["action"].label, widget=MemoizedSelect
    )
    select_across = forms.BooleanField(
        label="", required=False, initial=0, widget=MemoizedHiddenInput({"class": "select-across"})
    )


class FastListAdmin(admin.ModelAdmin):
    """A model admin whose changelist rows are rendered by ``fast_results``.

    A subclass with a changelist template of its own makes it extend
    ``admin/fast_change_list.html`` and names it in ``change_list_template`` (or leaves this
    one unset and relies on the admin's ``admin/<app>/<model>/change_list.html`` lookup);
    a subclass with a changelist class of its own derives it from ``FastResultsChangeList``.

    The page around the rows costs less too: its scripts and styles are rendered once per
    list of them (``rendered_media``), and the action form's widgets once per set of choices.
    """

    change_list_template = "admin/fast_change_list.html"
    action_form = ActionForm

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return FastResultsChangeList

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and isinstance(context.get("media"), forms.Media):
            context["media"] = rendered_media(context["media"])
        return response
