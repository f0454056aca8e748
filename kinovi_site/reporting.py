"""Error reports (the 500 e-mail to the admins, the debug page) with every secret masked.

Django's default filter hides settings, and only the variables and POST fields a view marks
as sensitive. A Kinovi key travels through a form, a service and the client under ordinary
names (`secret`, `api_key`, a headers dict), so this filter masks by name everywhere and,
in any value, by shape (`sk_…` keys, bearer tokens), as the log filter does.
"""

import pprint
import re
from collections.abc import Mapping

from django.views.debug import SafeExceptionReporterFilter

from kinovi_site.logging import mask_secrets


class _Shown:
    """A value as the report shows it: its masked text, not the object."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SecretMaskingReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTH|COOKIE|CIPHER|CREDENTIAL", flags=re.IGNORECASE
    )

    def is_active(self, request) -> bool:
        # The debug page too: a screenshot of it pasted into a ticket must not carry a key.
        return True

    def _hidden(self, name) -> bool:
        return isinstance(name, str) and bool(self.hidden_settings.search(name))

    def _structure(self, name, value, depth: int = 0):
        if self._hidden(name):
            return self.cleansed_substitute
        if depth > 5:
            return value
        if isinstance(value, Mapping):
            return {k: self._structure(k, v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._structure(None, v, depth + 1) for v in value]
        return value

    def _masked(self, name, value):
        structure = self._structure(name, value)
        if structure is self.cleansed_substitute:
            return structure
        try:
            return _Shown(mask_secrets(pprint.pformat(structure)))
        except Exception:  # a repr that fails: show nothing rather than break the report
            return _Shown("<unprintable value>")

    def get_post_parameters(self, request):
        if request is None:
            return {}
        params = super().get_post_parameters(request)
        return {
            name: self.cleansed_substitute if self._hidden(name) else mask_secrets(str(value))
            for name, value in params.items()
        }

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        return {
            name: mask_secrets(value) if isinstance(value, str) else value
            for name, value in meta.items()
        }

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._masked(name, value)) for name, value in variables]
