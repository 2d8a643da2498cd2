"""Column-name PII detector (PostgreSQL Anonymizer's ``anon.detect`` idea): which kinds of
personal data a column's *name* suggests. A ``keep`` on a flagged column needs a reason.

Names are split into lower-case words (``_``, ``-``, spaces, digits and camelCase), so
``customerEmail``, ``email_address`` and ``EMAIL2`` are all flagged, while ``cardinality`` or
``tokenizer_version`` are matched only where a category means a whole word.
"""

from __future__ import annotations

import re

# Each pattern runs over the words joined by "_" with a leading and trailing "_".
PII_CATEGORIES: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e_?mail"),
    "phone": re.compile(r"phone|mobile|msisdn|_(tel|fax|cell)_|telephone"),
    "name": re.compile(
        r"_(first|last|full|middle|given|family|maiden|display|nick|contact|user|sur|fore)_?name"
        r"|_name_|_surname|_forename"
    ),
    "address": re.compile(r"address|street|postcode|postal|_zip_|zip_?code|_addr_|_city_"),
    "ssn": re.compile(r"_ssn_|social_?security|national_?id|_nino_|_tax_?id_|passport"),
    "birth": re.compile(r"birth|_dob_"),
    "password": re.compile(r"passw|_pwd_|_pass_hash|_passhash"),
    "token": re.compile(r"token"),
    "secret": re.compile(r"secret"),
    "ip": re.compile(r"_ip_|ip_?addr|_inet_|_ipv[46]_|remote_addr|client_ip"),
    "iban": re.compile(r"iban|bank_?account|_bic_|swift"),
    "card": re.compile(r"_card_|card_?(number|num|no)|credit_?card|_pan_|_cvv|_cvc_|_ccn_"),
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z]+")


def name_words(column: str) -> list[str]:
    """``customerEmail2`` → ``["customer", "email"]``."""
    spaced = _CAMEL.sub("_", column)
    return [w.lower() for w in _SEPARATORS.split(spaced) if w]


def detect_pii(column: str) -> frozenset[str]:
    """The PII categories a column name suggests (empty when none)."""
    joined = "_" + "_".join(name_words(column)) + "_"
    return frozenset(kind for kind, pattern in PII_CATEGORIES.items() if pattern.search(joined))
