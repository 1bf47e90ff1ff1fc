"""Forms, rendered one way: the GOV.UK Design System's form group for every field.

`FormRenderer` (settings.FORM_RENDERER) draws a form with templates/forms/govuk/: each field with
its label (or legend), hint (the field's help_text), error message at the field, and the input
with the GOV.UK classes; `templates/forms/govuk/error_summary.html` lists every error at the top of
the page, each linking to its field. The ids follow Django's own: a hint is `<id>_helptext`, an
error `<id>_error`, and Django points the input's (or fieldset's) aria-describedby at exactly
those. A field that is not required is marked "(optional)" in its label, when its form also has
required fields (a page of search filters, all optional, marks none). A field with errors has
aria-invalid="true", which the stylesheet shows as GOV.UK's error state.

Dates are typed in day, month and year boxes in UK order (GOV.UK's date input), never through a
browser's date picker, which differs from one browser to the next and is hard to use with a
keyboard or a screen reader: `DateField`, `TimeField` (hour and minute) and `DateTimeField` (all
five, and seconds when asked) give errors in plain words that say which part is missing or wrong.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.forms.boundfield import BoundField as DjangoBoundField
from django.forms.renderers import TemplatesSetting
from django.forms.utils import from_current_timezone
from django.utils import timezone

# The GOV.UK class of each kind of widget (BoundField.widget_type names them).
WIDGET_CLASSES = {
    "textarea": "govuk-textarea",
    "select": "govuk-select",
    "selectmultiple": "govuk-select",
    "nullbooleanselect": "govuk-select",
    "file": "govuk-file-upload",
    "clearablefile": "govuk-file-upload",
    "checkbox": "govuk-checkboxes__input",
    "radioselect": "govuk-radios__input",
    "checkboxselectmultiple": "govuk-checkboxes__input",
    # GOV.UK's password input, with its button to show what was typed (field.html)
    "password": "govuk-input govuk-password-input__input govuk-js-password-input-input",
}
NO_CLASS = {"hidden", "multiplehidden"}


class BoundField(DjangoBoundField):
    """Django's bound field, with what the GOV.UK templates need to know about it."""

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        if isinstance(widget, forms.MultiWidget) or self.widget_type in NO_CLASS:
            return attrs
        govuk_class = WIDGET_CLASSES.get(self.widget_type, "govuk-input")
        # Keep any class the form gave the widget (a width, say) after the component's own.
        extra = widget.attrs.get("class", "")
        attrs["class"] = f"{govuk_class} {extra}".strip()
        if self.widget_type == "password":
            attrs.setdefault("autocapitalize", "none")
            attrs.setdefault("spellcheck", "false")
        return attrs

    @property
    def is_choice_group(self) -> bool:
        return self.widget_type in ("radioselect", "checkboxselectmultiple")

    @property
    def is_single_checkbox(self) -> bool:
        return self.widget_type == "checkbox"

    @property
    def marked_optional(self) -> bool:
        if self.field.required or self.is_hidden or self.is_single_checkbox:
            return False
        return any(field.required for field in self.form.fields.values())

    @property
    def error_anchor(self) -> str:
        """The id of the input an error summary's link should take the reader to: the field's own,
        the first option of a group of radios or checkboxes, the first box of a date."""
        widget = self.field.widget
        if not self.auto_id or self.is_hidden:
            return ""
        if self.is_choice_group:
            return f"{self.auto_id}_0"
        if isinstance(widget, forms.MultiWidget):
            return f"{self.auto_id}{widget.widgets_names[0]}"
        return self.auto_id


class FormRenderer(TemplatesSetting):
    """Every form and field through templates/forms/govuk/ (see the module's docstring)."""

    form_template_name = "forms/govuk/form.html"
    field_template_name = "forms/govuk/field.html"
    bound_field_class = BoundField


# -- Dates and times in boxes -----------------------------------------------------------------------

PART_LABELS = {
    "day": "Day",
    "month": "Month",
    "year": "Year",
    "hour": "Hour",
    "minute": "Minute",
    "second": "Second",
}
PART_WIDTHS = {"year": 4}


class DateTimePartsInput(forms.MultiWidget):
    """Boxes for the parts of a date and/or a time (GOV.UK's date input, with hour, minute and
    second boxes in the same style where a time is asked for). Each box is a plain text input
    with a numeric keyboard on phones; nothing depends on script."""

    template_name = "forms/govuk/date_input.html"

    def __init__(self, parts: tuple[str, ...], attrs=None):
        self.parts = parts
        widgets = {
            part: forms.TextInput(
                attrs={
                    "inputmode": "numeric",
                    "class": f"govuk-input govuk-date-input__input "
                    f"govuk-input--width-{PART_WIDTHS.get(part, 2)}",
                }
            )
            for part in parts
        }
        super().__init__(widgets, attrs)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        base_id = context["widget"]["attrs"].get("id")
        for part, subwidget in zip(self.parts, context["widget"]["subwidgets"], strict=True):
            # Ids by part (id_when_day), as the error summary and the labels name them.
            if base_id:
                subwidget["attrs"]["id"] = f"{base_id}_{part}"
            subwidget["part_label"] = PART_LABELS[part]
            # An invalid date marks every box, which is what GOV.UK does when it cannot tell which
            # part is wrong; aria-describedby is on the fieldset, not on each box.
            subwidget["attrs"].pop("aria-describedby", None)
        return context

    def decompress(self, value):
        if value is None:
            return [None] * len(self.parts)
        if isinstance(value, dt.datetime) and timezone.is_aware(value):
            value = timezone.localtime(value)
        # Minutes and seconds as a clock shows them (09:05), the other parts as people write them.
        return [
            f"{getattr(value, part):02d}"
            if part in ("minute", "second")
            else str(getattr(value, part))
            for part in self.parts
        ]


DATE_PARTS = ("day", "month", "year")
TIME_PARTS = ("hour", "minute")


class _PartsField(forms.Field):
    """Common to the date and time fields: reads the boxes, says in words which part is missing
    or wrong (GOV.UK's messages), and returns the value."""

    parts: tuple[str, ...] = ()
    what = "date"
    default_error_messages = {
        "required": "Enter the %(what)s",
        "incomplete": "%(label)s must include %(missing)s",
        "invalid": "%(label)s must be a real %(what)s",
        "ambiguous": "The clocks changed at that time on that day: enter a time just before or "
        "after the change",
    }

    def __init__(self, *, parts: tuple[str, ...] | None = None, **kwargs):
        self.parts = parts or self.parts
        kwargs.setdefault("widget", DateTimePartsInput(self.parts))
        super().__init__(**kwargs)

    def _error(self, code: str, **params) -> forms.ValidationError:
        label = str(self.label) if self.label else f"The {self.what}"
        return forms.ValidationError(
            self.error_messages[code],
            code=code,
            params={"what": self.what, "label": label, **params},
        )

    def to_python(self, value):
        if not isinstance(value, list | tuple):
            return value
        values = dict(zip(self.parts, ((v or "").strip() for v in value), strict=False))
        if not any(values.values()):
            return None
        missing = [part for part in self.parts if not values.get(part)]
        if missing:
            named = " and ".join(
                [", ".join(missing[:-1]), missing[-1]] if missing[:-1] else missing
            )
            named = f"{'an' if named.startswith('hour') else 'a'} {named}"
            raise self._error("incomplete", missing=named)
        if not all(v.isascii() and v.isdigit() for v in values.values()):
            raise self._error("invalid")
        numbers = {part: int(v) for part, v in values.items()}
        if "year" in numbers and len(values["year"]) != 4:
            raise self._error("invalid")
        try:
            return self.build(numbers)
        except ValueError:
            raise self._error("invalid") from None

    def build(self, numbers: dict[str, int]):
        raise NotImplementedError

    def validate(self, value):
        if value in self.empty_values and self.required:
            raise self._error("required")

    def has_changed(self, initial, data):
        try:
            data = self.to_python(data)
        except forms.ValidationError:
            return True
        return initial != data


class DateField(_PartsField):
    """A date in day, month and year boxes."""

    parts = DATE_PARTS
    what = "date"

    def build(self, numbers):
        return dt.date(numbers["year"], numbers["month"], numbers["day"])


class TimeField(_PartsField):
    """A time of day in hour and minute boxes (24-hour clock), with seconds when asked."""

    parts = TIME_PARTS
    what = "time"

    def __init__(self, *, seconds: bool = False, **kwargs):
        super().__init__(parts=TIME_PARTS + (("second",) if seconds else ()), **kwargs)

    def build(self, numbers):
        return dt.time(numbers["hour"], numbers["minute"], numbers.get("second", 0))


class DateTimeField(_PartsField):
    """A date and a time in one group of boxes, read in the current time zone (Europe/London),
    returned aware; a time the clocks skipped or passed twice that day is refused in words."""

    parts = DATE_PARTS + TIME_PARTS
    what = "date and time"

    def __init__(self, *, seconds: bool = False, **kwargs):
        super().__init__(parts=DATE_PARTS + TIME_PARTS + (("second",) if seconds else ()), **kwargs)

    def build(self, numbers):
        naive = dt.datetime(  # noqa: DTZ001 - made aware just below, in the current time zone
            numbers["year"],
            numbers["month"],
            numbers["day"],
            numbers["hour"],
            numbers["minute"],
            numbers.get("second", 0),
        )
        try:
            return from_current_timezone(naive)
        except forms.ValidationError:
            raise self._error("ambiguous") from None
