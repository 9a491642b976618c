"""Secrets out of what people read: settings printouts, log lines and error messages."""

import re

MASK = "***"

# The password of a URL's userinfo (`scheme://user:password@host`), and a query parameter
# that names a secret (`?password=...`, `&api_key=...`).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^\s/]*@")
_QUERY = re.compile(
    r"([?&](?:[\w.-]*(?:password|passwd|secret|token|api_key)|pwd|key)=)[^&\s]*", re.I
)
# Setting names whose value is itself a secret (`api_key`, `embedding_api_key`, `..._token`).
SECRET_NAME = re.compile(r"(?:^|_)(?:api_key|secret|password|passwd|token)$", re.I)


def redact(text: str) -> str:
    """`text` with every URL password and secret query value masked; the rest unchanged."""
    return _QUERY.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", text))
