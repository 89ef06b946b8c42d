"""What a secret looks like: secret-named keys, secret-shaped values, secret lines in text.

Three recognisers, all pure and linear in their input:

- :func:`is_secret_key`: a mapping key that names a secret (``api_key``, ``Authorization``,
  ``x-api-key``, ``db_pass``, ``refreshToken``, ``passphrase``, ``otp``, ``Set-Cookie``, ...),
  judged on its words (camelCase, ``-``, ``_`` and ``.`` split them); a number under a
  token-count key (``max_tokens: 512``) is not a secret.
- :func:`redact_text`: secret parts of free text: bearer/basic/digest credentials,
  ``sk-…``/``AKIA…``/JWT/GitHub/Slack/Google key shapes, PEM private-key blocks, URL
  userinfo, secret query parameters, ``Authorization:``/``Cookie:``/``Set-Cookie:`` lines and
  ``password: rest of line`` (to the end of the line), ``key=value`` / ``"key": "value"``
  pairs with a secret key (``curl -H 'X-Api-Key: …'``, ``OPENAI_API_KEY=…`` env lines).
- :func:`might_hold_secret`: a cheap prefilter (one RE2 search for trigger words); text
  without a trigger cannot match any pattern above, so the full patterns run only on hits.

Every repetition before a literal is bounded or anchored: texts run to megabytes and an
unbounded ``[a-z]*`` prefix makes a regex quadratic in the length of a run of letters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

REDACTED = "[REDACTED]"

# -- keys ----------------------------------------------------------------------------------
_SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "jwt",
        "otp",
        "pass",
        "passcode",
        "passphrase",
        "passwd",
        "password",
        "pin",
        "privatekey",
        "pwd",
        "secret",
        "secrets",
        "signature",
        "token",
        "tokens",
    }
)
# A word ``key`` (or ``id`` for session ids) right after one of these names a secret.
_KEY_QUALIFIERS = frozenset(
    {"api", "private", "session", "access", "secret", "signing", "encryption", "master"}
)
_JOINED = re.compile(r"apikey|accesskey|privatekey|secretkey|sessionkey|password|passwd")
# A last word that makes the key describe a secret rather than hold one (``auth_url``,
# ``password_file``, ``token_type``, ``secret_name``): such keys are kept.
_NEUTRAL_LAST = frozenset(
    {
        "url",
        "uri",
        "type",
        "method",
        "mode",
        "endpoint",
        "scheme",
        "enabled",
        "provider",
        "domain",
        "host",
        "name",
        "file",
        "path",
        "policy",
        "required",
        "expires",
        "expiry",
        "ttl",
        "length",
        "field",
        "header",
        "format",
        "version",
    }
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
# Keys that name counts or limits of LLM tokens, not secrets (when their value is a number).
_COUNT_KEY = re.compile(r"tokens$|tokens?_(count|used|limit|total)|^(max|num|total)_tokens?")


@lru_cache(maxsize=8192)
def _key_kind(key: str) -> tuple[bool, bool]:
    """(names a secret, is a token-count key) for a mapping key; cached per key."""
    snake = _CAMEL.sub(r"\1_\2", key[:200]).lower()
    words = [w for w in _SPLIT.split(snake) if w]
    if words == ["refresh"]:  # a bare "refresh" holds a refresh token
        return True, False
    secret = any(w in _SECRET_WORDS for w in words) or bool(_JOINED.search(snake))
    if secret and len(words) > 1 and words[-1] in _NEUTRAL_LAST:
        secret = False
    if not secret:
        secret = any(
            w in ("key", "id") and i > 0 and words[i - 1] in _KEY_QUALIFIERS
            for i, w in enumerate(words)
        )
    counted = bool(_COUNT_KEY.search("_".join(words)))
    return secret, counted


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def is_secret_key(key: str, value: Any = None) -> bool:
    """Tell whether a mapping key names a secret (a number under a token-count key does not)."""
    secret, counted = _key_kind(key)
    return secret and not (counted and (value is None or _is_number(value)))


# -- the prefilter -------------------------------------------------------------------------
_TRIGGERS = (
    "key",
    "token",
    "secret",
    "pass",
    "pwd",
    "auth",
    "bearer",
    "basic",
    "digest",
    "cookie",
    "credential",
    "private",
    "signature",
    "sig=",
    "otp",
    "refresh",
    "jwt",
    "sk-",
    "sk_",
    "rk_",
    "akia",
    "aiza",
    "eyj",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xox",
    "-----begin",
)
# A URL matters only with userinfo (``scheme://user:pass@``): secret query parameters are
# found by their key words above, and plain URLs (in every task input) stay on the fast path.
_URL_WITH_USERINFO = r"://[^/?#\s@\"']+@"
# Secret keys with no trigger word in them: ``pin`` (``user_pin``, ``userPin``; not the
# ``pin`` of "mapping" or "spinner") and a qualifier's id (``session_id``, ``apiId``), which
# is_secret_key redacts: without these a payload holding only such a key would skip the walk.
_KEY_WITHOUT_TRIGGER = (
    r"(?-i:(?:[Pp]in|PIN)(?:[^a-z]|$))"
    r"|(?:api|session|access|signing|encryption|master)[^a-z0-9]?id"
)
_PREFILTER = re2.compile(
    "(?i)"
    + "|".join([*(re.escape(t) for t in _TRIGGERS), _URL_WITH_USERINFO, _KEY_WITHOUT_TRIGGER])
)
# The binding's Python-level search wrapper costs more than the search on short strings;
# its compiled matcher is used directly when this version of google-re2 exposes it.
_MATCHER = getattr(_PREFILTER, "_regexp", None)
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def might_hold_secret(text: str) -> bool:
    """Cheap check: False means no pattern of :func:`redact_text` can match ``text``."""
    if _MATCHER is None or _UNANCHORED is None:  # pragma: no cover - other binding versions
        return bool(_PREFILTER.search(text) is not None)
    raw = text.encode("utf-8", "surrogatepass")
    return bool(_MATCHER.Match(_UNANCHORED, raw, 0, len(raw))[0][0] != -1)


def might_hold_secret_json(text: str) -> bool:
    """:func:`might_hold_secret` for JSON text, whose unicode escapes can spell any word."""
    return "\\u" in text or might_hold_secret(text)


# -- values in text ------------------------------------------------------------------------
_SECRET_VALUE = re.compile(
    r"(?i:\b(bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{4,})"
    r"|\bsk-[A-Za-z0-9_-]{6,}"
    r"|\b[rs]k_(?:live|test|prod)_[A-Za-z0-9]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{30,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|\.?[A-Za-z0-9_-]*\Z)"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    # A text cut inside a key (a frame cut short, a payload cut at its cap): the shape's
    # prefix running to the end is enough.
    r"|\b(?:sk-|[rs]k_|AIza|eyJ|AKIA|ASIA|gh[pousr]_|xox[abprs]-)[A-Za-z0-9_.-]*\Z"
)
# A PEM private key: everything from its BEGIN line to its END line (or the text's end).
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
    re.S,
)
# Any userinfo (user:password@ or a token as user@) in a URL.
_URL_USERINFO = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[a-z][a-z0-9+.-]{0,31}://)[^/?#\s@\"']+@", re.I
)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:[a-z0-9_-]{0,40}(?:api[_-]?key|token|secret|passw(?:or)?d|pwd|pass"
    r"|signature|sig|auth|credential|otp)))=[^&#\s\"']+",
    re.I,
)
# The rest of a line (JSON strings are decoded before they are scanned).
_REST = r"[^\r\n]+"
# Header lines and password lines: the whole rest of the line is the secret.
_LINE_PAIR = re.compile(
    r"(?P<key>\b(?:proxy-)?authorization|\bset-cookie|\bcookie|passw(?:or)?d|passphrase"
    r"|\bpwd)(?P<sep>[\"']?\s{0,8}[:=]\s{0,8}[\"']?)(?P<value>" + _REST + ")",
    re.I,
)
# key: value / key=value / "key": "value" with a one-word secret value.
_TEXT_PAIR = re.compile(
    r"(?P<key>(?:api[_-]?key|apikey|access[_-]?key|token|secret|credentials?|private[_-]?key"
    r"|\bauth|\bpass|\botp)[\"']?\s{0,8}[:=]\s{0,8}[\"']?)"
    r"(?P<value>[^\s\"'&,;}\]]+)",
    re.I,
)


# Env lines: an upper-case name ending in KEY, TOKEN, SECRET, PASSWORD, ... (STRIPE_KEY=...).
_ENV_LINE = re.compile(
    r"(?P<key>\b[A-Z][A-Z0-9_]{0,80}(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|PASS|CREDENTIALS?)"
    r"\s{0,8}=\s{0,8})(?P<value>[^\s\"'&,;]+)"
)


def _line_pair(match: re.Match[str]) -> str:
    value = match.group("value").strip()
    if not value or value.isdigit() or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{REDACTED}"


def _text_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.isdigit() or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group('key')}{REDACTED}"


def redact_text(text: str) -> str:
    """Replace secret-looking parts of a string."""
    if not might_hold_secret(text):
        return text
    text = _PEM.sub(REDACTED, text)
    text = _LINE_PAIR.sub(_line_pair, text)
    text = _SECRET_VALUE.sub(REDACTED, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}={REDACTED}", text)
    text = _ENV_LINE.sub(_text_pair, text)
    return _TEXT_PAIR.sub(_text_pair, text)
