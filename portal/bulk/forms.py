"""The upload form of bulk registration. The file's content is checked by the service."""

from __future__ import annotations

from django import forms
from django.conf import settings


class BulkUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        error_messages={
            "required": "Choose the CSV file to upload.",
            "empty": "The file is empty. Download the template, fill in one row per kit and upload it.",
        },
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        max_bytes = settings.BULK_MAX_BYTES
        if upload.size > max_bytes:
            raise forms.ValidationError(
                f"The file is too large ({upload.size / 1_048_576:.1f} MB); upload at most "
                f"{max_bytes / 1_048_576:.1f} MB at a time (split it into several files).",
                code="too_large",
            )
        return upload
