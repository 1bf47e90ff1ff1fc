"""The public request form: plain fields, strict limits, a honeypot and a proof of work."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import altcha
from django import forms
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from common.forms import DateField, TimeField
from devices.models import Borough
from requests_portal.models import RequestKind


def altcha_challenge() -> dict:
    challenge = altcha.create_challenge_v1(
        hmac_key=settings.SECRET_KEY,
        max_number=settings.BWV_ALTCHA_MAX_NUMBER,
        expires=timezone.now() + timedelta(minutes=20),
    )
    return {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "maxnumber": challenge.max_number,
        "salt": challenge.salt,
        "signature": challenge.signature,
    }


def altcha_verify(payload: str) -> bool:
    """A solved, signed, unexpired challenge, used once.

    The payload comes from the public, so it may be anything: the library raises on some shapes it
    does not expect (a number or a list where the salt goes), and any failure to verify is a failed
    check, never an error page."""
    if not payload or len(payload) > 2000:
        return False
    try:
        ok, _error = altcha.verify_solution_v1(payload, settings.SECRET_KEY, check_expires=True)
        signature = json.loads(base64.b64decode(payload))["signature"] if ok else None
    except Exception:  # noqa: BLE001 - hostile input may break the library in any way
        return False
    if not ok or not isinstance(signature, str):
        return False
    # A solution is good for one submission: remember it until it would have expired anyway.
    return cache.add(f"altcha:{signature}", 1, timeout=30 * 60)


class RequestForm(forms.Form):
    """Rendered by the site's form renderer (GOV.UK form groups; optional fields are marked so in
    their labels). Messages say what to do, in the words of the GOV.UK Design System."""

    kind = forms.ChoiceField(
        choices=RequestKind.choices,
        widget=forms.RadioSelect,
        label="What are you asking for?",
        help_text="For footage of yourself, choose right of access. Freedom of Information is for "
        "information about how the police work, and anything released is published to everyone.",
        error_messages={"required": "Select what you are asking for"},
    )
    name = forms.CharField(
        max_length=200,
        label="Your full name",
        widget=forms.TextInput(attrs={"autocomplete": "name", "spellcheck": "false"}),
        error_messages={"required": "Enter your full name"},
    )
    email = forms.EmailField(
        max_length=254,
        label="Your e-mail address",
        help_text="We send a link to it: nothing happens until you open it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
        error_messages={
            "required": "Enter your e-mail address",
            "invalid": "Enter an e-mail address in the right format, like name@example.com",
        },
    )
    postal_address = forms.CharField(
        max_length=1000,
        required=False,
        label="Postal address",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
    )
    incident_date = DateField(
        label="Date of the incident",
        help_text="For example, 27 3 2026",
        error_messages={"required": "Enter the date of the incident"},
    )
    incident_time = TimeField(
        label="About what time?",
        help_text="On the 24-hour clock, for example 14 30 for half past two in the afternoon",
        error_messages={
            "required": "Enter about what time it happened",
            "incomplete": "The time must include %(missing)s",
            "invalid": "Enter a real time on the 24-hour clock, like 14 30",
        },
    )
    borough = forms.ModelChoiceField(
        queryset=Borough.objects.order_by("name"),
        to_field_name="code",
        label="London borough",
        empty_label="Choose the borough",
        error_messages={"required": "Select the borough where it happened"},
    )
    place = forms.CharField(
        max_length=300,
        label="Where did it happen?",
        help_text="A street, a building or a landmark",
        error_messages={"required": "Enter where it happened"},
    )
    description = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        label="What happened?",
        error_messages={"required": "Enter what happened"},
    )
    appearance = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="How can we recognise you in the footage?",
        help_text="For example, what you were wearing",
        error_messages={"required": "Enter how we can recognise you"},
    )
    collar_number = forms.CharField(
        max_length=20,
        required=False,
        label="An officer's collar number",
        help_text="If you know it: it is on the officer's shoulder",
        widget=forms.TextInput(attrs={"class": "govuk-input--width-10", "spellcheck": "false"}),
    )
    declaration = forms.BooleanField(
        label="I confirm the information is true and that I am asking for footage of myself",
        error_messages={
            "required": "Confirm the information is true and that you are asking for footage "
            "of yourself"
        },
    )
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    altcha = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_website(self):
        if self.cleaned_data.get("website"):
            raise forms.ValidationError("This field must be left empty.")
        return ""

    def clean_altcha(self):
        if not altcha_verify(self.cleaned_data.get("altcha", "")):
            raise forms.ValidationError(
                "The automatic check that you are not a robot did not finish: wait a moment and "
                "send the form again (it needs JavaScript)."
            )
        return ""

    def clean(self):
        data = super().clean()
        day, time = data.get("incident_date"), data.get("incident_time")
        if day and time:
            at = datetime.combine(day, time, tzinfo=timezone.get_default_timezone())
            if at > timezone.now() + timedelta(minutes=5):
                self.add_error("incident_date", "The incident cannot be in the future.")
            elif at < timezone.now() - timedelta(days=365 * 7):
                self.add_error("incident_date", "We keep no footage that old: check the year.")
            data["incident_at"] = at
        return data

    def request_data(self) -> dict:
        d = self.cleaned_data
        return {
            key: d[key]
            for key in (
                "kind",
                "name",
                "email",
                "postal_address",
                "borough",
                "place",
                "description",
                "appearance",
                "collar_number",
            )
        } | {"incident_at": d["incident_at"]}
