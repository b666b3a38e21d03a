"""Phone numbers a caller gives: which digit strings are one, and in what normal form.

- a mainland mobile: 11 digits ``1[3-9]…`` (a leading 86 / 0086 is dropped), valid by libphonenumber;
- a Beijing landline: ``010`` + 8 digits, or 8 digits alone (``010`` is added);
- in English calls, a North American number first: 10 digits (a leading 1 is dropped); the 555 numbers of
  films and examples are accepted as *possible* numbers.

Used by the callback extractor (which string of a call is the caller's number), by the transcriber's
number restoration (which restorations make a number at all) and by the review edit check.

Example::

    >>> validate_number("8613911023456", "zh")
    ('13911023456', 'callback:cn_mobile')
    >>> validate_number("63812234", "zh")
    ('01063812234', 'callback:beijing_landline_local')
"""

from __future__ import annotations

import re

import phonenumbers

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"010\d{8}")


def _nanp(digits: str) -> tuple[str | None, str]:
    nanp = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(nanp) != 10 or nanp[0] not in "23456789":
        return None, ""
    try:
        parsed = phonenumbers.parse(nanp, "US")
    except phonenumbers.NumberParseException:
        return None, ""
    if phonenumbers.is_valid_number(parsed):
        return nanp, "callback:nanp"
    if phonenumbers.is_possible_number(parsed):
        return nanp, "callback:nanp_possible"
    return None, ""


def validate_number(digits: str, language: str) -> tuple[str | None, str]:
    """``(normalised digits, rule)`` of the first valid phone inside ``digits``; ``(None, "")`` if none.

    English calls try a North American number first ("1-555-…" is not a Chinese 155 mobile).
    """
    if language == "en":
        number, rule = _nanp(digits)
        if number:
            return number, rule
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (13, 12):
        digits = digits[2:]
    for m in _MOBILE.finditer(digits):
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(m.group(), "CN")):
                return m.group(), "callback:cn_mobile"
        except phonenumbers.NumberParseException:
            continue
    landline = _LANDLINE.search(digits)
    if landline:
        return landline.group(), "callback:beijing_landline"
    if len(digits) == 8 and digits[0] in "2345689":
        return "010" + digits, "callback:beijing_landline_local"
    if len(digits) in (10, 11):
        return _nanp(digits)
    return None, ""


def is_phone_number(digits: str) -> bool:
    """True when ``digits`` is, whole, a number a caller gives: a mainland mobile or a Beijing
    landline (eight digits, or ``010`` and eight)."""
    number, rule = validate_number(digits, "zh")
    if number is None:
        return False
    if rule == "callback:cn_mobile":
        return number == digits
    return rule.startswith("callback:beijing_landline") and number.removeprefix("010") == digits.removeprefix("010")


__all__ = ["is_phone_number", "validate_number"]
