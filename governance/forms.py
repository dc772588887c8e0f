"""The forms of the reviewer and compliance pages. They validate input; the actions decide."""

from django import forms

from governance.choices import AuditAction, SignatureMeaning
from registry.choices import Stage

DECISIONS = [
    (SignatureMeaning.APPROVED.value, "Approve"),
    (SignatureMeaning.REJECTED.value, "Reject"),
]

EXPORT_KINDS = [
    ("dossier", "Model version dossier (subject: model version id)"),
    ("audit_trail", "Audit-trail report (subject: project key)"),
    ("fairness", "Fairness report (subject: fairness audit id)"),
]


class SignForm(forms.Form):
    """A reviewer's decision on a transition request, with the password re-entered."""

    meaning = forms.ChoiceField(
        label="Decision", choices=DECISIONS, widget=forms.RadioSelect, initial="approved"
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing re-asks your password (21 CFR 11.200). Wrong attempts count toward "
        "locking your account.",
    )

    def clean(self):
        data = super().clean()
        if data.get("meaning") == SignatureMeaning.REJECTED and not data.get("comment", "").strip():
            self.add_error("comment", "Say why you reject the request.")
        return data


class TransitionRequestForm(forms.Form):
    """A data scientist's request to move a version to a stage the project's policy allows."""

    to_stage = forms.ChoiceField(label="Move to stage")
    justification = forms.CharField(
        label="Justification",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, targets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_stage"].choices = [(s, Stage(s).label) for s in targets]

    def clean_justification(self):
        text = self.cleaned_data["justification"].strip()
        if not text:
            raise forms.ValidationError("Explain why the version should move.")
        return text


class AuditFilterForm(forms.Form):
    """Filters of the audit-trail browser; every field is optional."""

    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    project = forms.CharField(required=False, max_length=63, label="Project key")
    actor = forms.CharField(required=False, max_length=300, label="Actor name contains")
    object_type = forms.CharField(required=False, max_length=100, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    since = forms.DateField(
        required=False, label="From (UTC date)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False,
        label="Until (UTC date, inclusive)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data


class ExportForm(forms.Form):
    """A request for a PDF document, passed on to the exports API."""

    kind = forms.ChoiceField(choices=EXPORT_KINDS)
    subject = forms.CharField(max_length=100)
