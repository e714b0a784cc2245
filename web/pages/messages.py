"""Service error messages in the user's language.

The service layer speaks English (its messages also go to the REST API and process
incidents); pages show the known ones translated. Patterns are tried in order; an unknown
message is shown as it is, so nothing is ever hidden.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

#: A record of each kind, as the subject of a sentence.
ONE = {"lead": _l("Lead"), "deal": _l("Deal"), "contact": _l("Contact"),
       "company": _l("Company"), "product": _l("Product"), "invoice": _l("Invoice"),
       "user": _l("User"), "department": _l("Department"), "role": _l("Role"),
       "task": _l("Task"), "activity": _l("Activity"), "comment": _l("Comment")}

_EXACT = {
    "Another record already has this value (or was saved at the same moment); nothing was "
    "saved. Reload the page and try again.":
        _l("Another record already has this value (or was saved at the same moment); nothing "
           "was saved. Reload the page and try again."),
    "Something went wrong on our side; the change was not saved.":
        _l("Something went wrong on our side; the change was not saved."),
    "The form expired or lacks its CSRF token; reload the page and try again.":
        _l("The form has expired; reload the page and try again."),
    "The server is busy; nothing was saved. Try again in a moment.":
        _l("The server is busy; nothing was saved. Try again in a moment."),
    "is required": _l("is required"),
    "must be a string": _l("must be text"),
    'must be a decimal number such as "1500.00"': _l('must be a number such as "1500.00"'),
    "must be a non-negative amount below 10^15": _l("must be a non-negative amount below 10^15"),
    "must have at most two decimal places": _l("must have at most two decimal places"),
    "must be a three-letter currency code such as RUB":
        _l("must be a three-letter currency code such as RUB"),
    "must be a whole number": _l("must be a whole number"),
    "must be true or false": _l("must be yes or no"),
    "must be a date YYYY-MM-DD": _l("must be a date"),
    "a contact needs a first or last name": _l("a contact needs a first or last name"),
    "is read-only": _l("is read-only"),
    "must be an e-mail address": _l("must be an e-mail address"),
    "is already used by another user": _l("is already used by another user"),
    "must be 4 to 200 characters": _l("must be 4 to 200 characters"),
    "is wrong": _l("is wrong"),
    "is required: map a column to it": _l("is required: map a column to it"),
    "is mapped from two columns": _l("is mapped from two columns"),
    "is not a field that can be imported": _l("is not a field that can be imported"),
    "the file is empty": _l("the file is empty"),
    "the file has no rows": _l("the file has no rows"),
    "this is neither a CSV nor an XLSX file": _l("this is neither a CSV nor an XLSX file"),
    "a record cannot be merged with itself": _l("a record cannot be merged with itself"),
    "is required to change your own password": _l("is required to change your own password"),
    "must be ru or en": _l("must be ru or en"),
    "is not a cursor of the task list (take the 'next' of the page before)":
        _l("this link to further tasks is damaged or out of date; open the inbox again"),
    "must be mine or offered": _l("must be mine or offered"),
    "is needed with 'after'": _l("is needed to show further tasks"),
    "must be a time zone such as Europe/Moscow": _l("must be a time zone such as Europe/Moscow"),
    "must be an ISO 8601 date-time": _l("must be a date and time"),
    "must include a time zone offset": _l("must include a time zone offset"),
    "is required (at most 200 characters)": _l("is required (at most 200 characters)"),
    "a user cannot be their own deputy": _l("a user cannot be their own deputy"),
    "a department cannot be inside itself": _l("a department cannot be inside itself"),
    "this lead is already converted": _l("this lead is already converted"),
    "a junk lead cannot be converted": _l("a junk lead cannot be converted"),
    "a lead becomes CONVERTED only by converting it":
        _l("a lead becomes converted only by converting it"),
    "must be text of at most 20000 characters": _l("must be text of at most 20000 characters"),
    "must be at most 20000 characters": _l("must be at most 20000 characters"),
    "give either a user or a department": _l("choose either a user or a department"),
    "must be a level from 0 (none) to 5 (all)": _l("must be one of the access levels"),
    "this pipeline has no stages": _l("this pipeline has no stages"),
    "is not a cursor of this list (take the 'next' of the page before)":
        _l("this page link is out of date; start again from the first page"),
    "a section cannot be inside itself": _l("a section cannot be inside itself"),
    "must be greater than zero": _l("must be greater than zero"),
    "the deal has no product rows to invoice": _l("the deal has no product rows to invoice"),
    "must not be before the invoice date": _l("must not be before the invoice date"),
    "must be 10 or 12 digits": _l("must be 10 or 12 digits"),
    "must be 9 digits": _l("must be 9 digits"),
    "must have at most three decimal places": _l("must have at most three decimal places"),
    "a percentage must be at most 100": _l("a percentage must be at most 100"),
    "must not exceed the price": _l("must not exceed the price"),
    "is not a field of a product row": _l("is not a field of a product row"),
    'must be a number such as "1" or "2.5"': _l('must be a number such as "1" or "2.5"'),
    "must be a PNG or JPEG picture": _l("must be a PNG or JPEG picture"),
    "is not a readable PNG or JPEG picture": _l("is not a readable PNG or JPEG picture"),
    "choose a PNG or JPEG file": _l("choose a PNG or JPEG file"),
    "an invoice needs at least one row": _l("an invoice needs at least one row"),
    "give a deal, or a company or contact to invoice":
        _l("choose a deal, or a company or contact to invoice"),
    "cannot be changed on an invoice": _l("cannot be changed on an invoice"),
    "an invoice made from a deal takes the deal's product rows":
        _l("an invoice made from a deal takes the deal's product rows"),
    "This section still holds products; move or delete them first":
        _l("This section still holds products; move or delete them first"),
    "This section still holds subsections; move or delete them first":
        _l("This section still holds subsections; move or delete them first"),
}

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^must be at most (?P<n>\d+) characters$"), "chars"),
    (re.compile(r"^must be at least (?P<n>-?\d+)$"), "min"),
    (re.compile(r"^must be at most (?P<n>-?\d+)$"), "max"),
    (re.compile(r"^must be one of: (?P<v>.*)$"), "choices"),
    (re.compile(r"^'(?P<v>.*)' is not a phone number$"), "phone"),
    (re.compile(r"^'(?P<v>.*)' is not an e-mail address$"), "email"),
    (re.compile(r"^no stage '(?P<v>.*)' in pipeline (?P<n>\d+)$"), "stage"),
    (re.compile(r"^no (active )?(?P<v>[a-z ]+) with id (?P<n>.*)$"), "missing"),
    (re.compile(r"^must be at most (?P<n>\d+) KB \(this file is (?P<v>\d+) KB\)$"), "kb"),
    (re.compile(r"^must be at most (?P<n>\d+)×\d+ pixels \(this one is (?P<v>\S+)\)$"),
     "pixels"),
    (re.compile(r"^Only a draft invoice can be changed; this one is (?P<v>\w+)$"), "draft"),
    (re.compile(r"^No (?P<v>[a-z_]+) with id '?(?P<n>[^']*)'?$"), "not_found"),
    (re.compile(r"^cannot sort (?P<v>[a-z_]+) by '(?P<n>.*)'$"), "sort"),
    (re.compile(r"^the product is priced in (?P<v>\w+), the record in (?P<n>\w+)$"), "currency"),
]


def at_most_chars(n: int) -> str:
    """"не более 255 символов", with the noun agreeing with the number (Russian has three forms)."""
    return ngettext("must be at most %(num)d character", "must be at most %(num)d characters", n)


def translate(message: str) -> str:
    """``message`` from a ``CrmError`` in the request's language."""
    if message in _EXACT:
        return str(_EXACT[message])
    for pattern, kind in _PATTERNS:
        m = pattern.match(message)
        if m is None:
            continue
        g = m.groupdict()
        if kind == "chars":
            return at_most_chars(int(g["n"]))
        if kind == "min":
            return _("must be at least %(n)s", n=g["n"])
        if kind == "max":
            return _("must be at most %(n)s", n=g["n"])
        if kind == "choices":
            return _("must be one of: %(values)s", values=g["v"])
        if kind == "phone":
            return _("“%(value)s” is not a phone number", value=g["v"])
        if kind == "email":
            return _("“%(value)s” is not an e-mail address", value=g["v"])
        if kind == "stage":
            return _("stage “%(stage)s” is not in the chosen pipeline", stage=g["v"])
        if kind == "currency":
            return _("the product is priced in %(product)s, the record in %(record)s",
                     product=g["v"], record=g["n"])
        if kind == "kb":
            return _("must be at most %(n)s KB (this file is %(size)s KB)", n=g["n"],
                     size=g["v"])
        if kind == "pixels":
            return _("must be at most %(n)s pixels a side (this one is %(size)s)", n=g["n"],
                     size=g["v"])
        if kind == "draft":
            return _("Only a draft invoice can be changed")
        if kind == "not_found":
            return _("%(what)s #%(id)s was not found: it was deleted, or the link is wrong.",
                     what=str(ONE.get(g["v"], g["v"])), id=g["n"])
        if kind == "sort":
            return _("the list cannot be sorted by this column")
        if kind == "missing":
            return _("does not exist (id %(id)s)", id=g["n"])
    return message


def translate_fields(fields: dict[str, str]) -> dict[str, str]:
    return {name: translate(msg) for name, msg in fields.items()}
