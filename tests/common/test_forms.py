"""Forms render one way (common.forms.FormRenderer): GOV.UK form groups whose labels, hints,
errors and aria-describedby agree with each other, values kept after an error, optional fields
marked, and dates typed in boxes in UK order with errors that say which part is wrong."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.template import Context, Template
from django.utils import timezone

from common.forms import DateField, DateTimeField, TimeField
from tests.html import Page as Elements

LONDON = ZoneInfo("Europe/London")


class IncidentForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("sar", "Right of access"), ("foi", "Freedom of information")],
        widget=forms.RadioSelect,
        label="What are you asking for?",
    )
    name = forms.CharField(max_length=20, label="Your full name", help_text="As on your passport")
    note = forms.CharField(required=False, widget=forms.Textarea, label="Anything else")
    day = DateField(label="Date of the incident")
    at = TimeField(label="About what time")
    borough = forms.ChoiceField(choices=[("", "Choose"), ("QA", "Harrow")], label="Borough")
    sure = forms.BooleanField(label="I confirm this is true")
    secret = forms.CharField(widget=forms.PasswordInput, label="Password")
    token = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_token(self):
        raise forms.ValidationError("The automatic check did not finish")


def render(form) -> str:
    page = Template('{% include "forms/govuk/error_summary.html" %}<form>{{ form }}</form>').render(
        Context({"form": form})
    )
    return " ".join(page.split())


POSTED = {
    "kind": "sar",
    "name": "",
    "note": "typed before the error",
    "day_day": "31",
    "day_month": "2",
    "day_year": "2026",
    "at_hour": "14",
    "at_minute": "",
    "borough": "QA",
    "secret": "",
}


def test_a_rejected_form_keeps_what_was_typed_and_says_what_is_wrong_at_each_field():
    form = IncidentForm(POSTED)
    assert not form.is_valid()
    html = render(form)
    page = Elements(html)

    # Values are kept: the radio chosen, the text typed, the date's boxes, the select.
    assert "checked" in page.by_id("id_kind_0")
    assert "typed before the error" in page.text["id_note"]
    assert page.by_id("id_day_day")["value"] == "31"
    assert page.by_id("id_day_month")["value"] == "2"
    assert page.by_id("id_at_hour")["value"] == "14"
    assert "selected" in next(
        a for t, a in page.elements if t == "option" and a.get("value") == "QA"
    )

    # Each error is at its field, under an id that the field's aria-describedby names, and the
    # label and the error are apart (never "Your full nameThis field is required.").
    assert page.text["id_name_error"].strip() == "Error: This field is required."
    assert page.by_id("id_name")["aria-describedby"].split() == [
        "id_name_helptext",
        "id_name_error",
    ]
    assert page.text["id_name_helptext"] == "As on your passport"
    assert page.by_id("id_name")["aria-invalid"] == "true"
    assert "Your full nameThis field" not in html
    assert page.text["id_day_error"].strip() == "Error: Date of the incident must be a real date"
    assert page.text["id_at_error"].strip() == "Error: About what time must include a minute"
    # Groups of inputs (a date, radios) are described by their fieldset.
    day_fieldset = next(
        a
        for t, a in page.elements
        if t == "fieldset" and "id_day_error" in a.get("aria-describedby", "")
    )
    assert day_fieldset["role"] == "group"

    # Every aria-describedby and label points at an element that exists.
    ids = page.ids()
    for _tag, attrs in page.elements:
        for ref in attrs.get("aria-describedby", "").split():
            assert ref in ids, ref
        if attrs.get("for"):
            assert attrs["for"] in ids, attrs["for"]


def test_the_error_summary_links_each_error_to_its_input():
    form = IncidentForm(POSTED)
    form.is_valid()
    page = Elements(render(form))
    links = {attrs["href"] for tag, attrs in page.elements if tag == "a"}
    assert links == {"#id_name", "#id_day_day", "#id_at_hour", "#id_sure", "#id_secret"}
    ids = page.ids()
    assert all(link[1:] in ids for link in links)
    # A hidden field's error is listed without a link (there is nothing to focus).
    assert "The automatic check did not finish" in render(form)


def test_inputs_carry_the_govuk_classes_and_optional_fields_are_marked():
    page = Elements(render(IncidentForm()))
    assert "govuk-input" in page.by_id("id_name")["class"].split()
    assert "govuk-textarea" in page.by_id("id_note")["class"].split()
    assert "govuk-select" in page.by_id("id_borough")["class"].split()
    assert "govuk-radios__input" in page.by_id("id_kind_0")["class"].split()
    assert "govuk-checkboxes__input" in page.by_id("id_sure")["class"].split()
    assert "govuk-date-input__input" in page.by_id("id_day_day")["class"].split()
    assert "govuk-password-input__input" in page.by_id("id_secret")["class"].split()
    assert page.by_id("id_day_day")["inputmode"] == "numeric"
    labels = {a["for"]: a for t, a in page.elements if t == "label" and a.get("for")}
    assert set(labels) >= {"id_name", "id_note", "id_borough", "id_kind_0", "id_day_day", "id_sure"}
    html = render(IncidentForm())
    assert "Anything else (optional)" in html
    assert "Your full name (optional)" not in html
    assert 'type="date"' not in html and 'type="time"' not in html


def test_a_form_of_optional_filters_marks_none_of_them_optional():
    class Filters(forms.Form):
        officer = forms.CharField(required=False, label="Officer")
        camera = forms.CharField(required=False, label="Camera")

    assert "(optional)" not in render(Filters())


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ({"day": "", "month": "", "year": ""}, "Enter the date"),
        ({"day": "3", "month": "", "year": "2026"}, "When must include a month"),
        ({"day": "", "month": "", "year": "2026"}, "When must include a day and month"),
        ({"day": "3", "month": "13", "year": "2026"}, "When must be a real date"),
        ({"day": "29", "month": "2", "year": "2025"}, "When must be a real date"),
        ({"day": "3", "month": "4", "year": "26"}, "When must be a real date"),
        ({"day": "three", "month": "4", "year": "2026"}, "When must be a real date"),
        ({"day": "٣", "month": "4", "year": "2026"}, "When must be a real date"),
    ],
)
def test_a_date_that_is_missing_a_part_or_not_real_is_refused_in_words(boxes, message):
    class Form(forms.Form):
        when = DateField(label="When")

    form = Form({f"when_{part}": value for part, value in boxes.items()})
    assert not form.is_valid()
    assert form.errors["when"] == [message]


def test_a_date_is_read_in_uk_order_and_shown_again_in_its_boxes():
    class Form(forms.Form):
        when = DateField(label="When")

    form = Form({"when_day": " 3", "when_month": "04", "when_year": "2026"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["when"] == dt.date(2026, 4, 3)
    page = Elements(render(Form(initial={"when": dt.date(2026, 4, 3)})))
    assert [page.by_id(f"id_when_{p}")["value"] for p in ("day", "month", "year")] == [
        "3",
        "4",
        "2026",
    ]


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        # Summer time: 14:05 in London is 13:05 UTC.
        (("3", "7", "2026", "14", "05", "09"), dt.datetime(2026, 7, 3, 13, 5, 9, tzinfo=dt.UTC)),
        # Winter: London is UTC.
        (("3", "1", "2026", "00", "00", "00"), dt.datetime(2026, 1, 3, 0, 0, 0, tzinfo=dt.UTC)),
    ],
)
def test_a_date_and_time_is_london_time_returned_aware(boxes, expected):
    class Form(forms.Form):
        start = DateTimeField(label="Start", seconds=True)

    names = ("day", "month", "year", "hour", "minute", "second")
    form = Form({f"start_{n}": v for n, v in zip(names, boxes, strict=True)})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start"] == expected
    assert form.cleaned_data["start"].tzinfo is not None


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        # The clocks went forward at 01:00 on 29 March 2026: 01:30 did not happen in London.
        (("29", "3", "2026", "1", "30"), "The clocks changed at that time on that day"),
        # They went back at 02:00 on 25 October 2026: 01:30 happened twice.
        (("25", "10", "2026", "1", "30"), "The clocks changed at that time on that day"),
        (("3", "7", "2026", "25", "00"), "Start must be a real date and time"),
        (("3", "7", "2026", "", "10"), "Start must include an hour"),
    ],
)
def test_a_time_the_clocks_skipped_or_repeated_is_refused_in_words(boxes, message):
    class Form(forms.Form):
        start = DateTimeField(label="Start")

    names = ("day", "month", "year", "hour", "minute")
    form = Form({f"start_{n}": v for n, v in zip(names, boxes, strict=True)})
    assert not form.is_valid()
    assert form.errors["start"][0].startswith(message)


def test_an_aware_value_is_shown_in_london_time():
    class Form(forms.Form):
        start = DateTimeField(label="Start")

    at = dt.datetime(2026, 7, 3, 13, 5, tzinfo=dt.UTC)
    with timezone.override(LONDON):
        page = Elements(render(Form(initial={"start": at})))
    values = [
        page.by_id(f"id_start_{p}")["value"] for p in ("day", "month", "year", "hour", "minute")
    ]
    assert values == ["3", "7", "2026", "14", "05"]
