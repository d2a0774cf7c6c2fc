"""EventBridge event patterns checked as PutRule checks them, before any matching.

moto 5.2.5 only checks that every field is an object or a non-empty array, so patterns AWS refuses with
InvalidEventPatternException (unknown operators, bad operands, a one-branch `$or`...) would route events
offline and fail at `terraform apply`. This module refuses them first, by the EventBridge User Guide:

  * "Creating Amazon EventBridge event patterns"
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
  * "Comparison operators for use in event patterns" / "Content filtering in Amazon EventBridge event patterns"
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
  * "Arrays in event patterns" and "Matching null values and empty strings"
  * "Amazon EventBridge quotas" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html)
  * the PutRule API reference (EventPattern: string, at most 4096 characters)

Where the guide is silent, what aws/event-ruler's JsonRuleCompiler (the matcher EventBridge publishes) refuses
is refused too; where both are silent, the stricter reading is taken and its comment says so.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from decimal import Decimal

from .errors import TerraformError

# "Amazon EventBridge quotas": Event pattern size, 2,048 characters by default (adjustable); the PutRule API
# reference caps EventPattern at 4,096. Offline there is no quota increase, so the default applies.
PATTERN_SIZE_QUOTA = 2048
PUT_RULE_MAX_PATTERN = 4096

# Content filtering, `$or` note: PutRule throws InvalidEventPatternException "if the use of `$or` results in
# over 1000 rule combinations", counted by multiplying the number of arguments of every `$or` array.
MAX_OR_COMBINATIONS = 1000

# Content filtering, numeric matching: "limited to values between -1.0e9 and +1.0e9 inclusive, with 15 digits of
# precision, or six digits to the right of the decimal point". (Older editions said +-5.0e9 and event-ruler now
# takes any double; the narrowest documented bound is kept, the stricter reading.)
NUMERIC_MIN, NUMERIC_MAX, NUMERIC_DECIMALS = -1.0e9, 1.0e9, 6

OPERATORS = ("prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case", "wildcard")
# event-ruler refuses these as field names inside a `$or` branch (they would read as filters); "exactly" is an
# event-ruler operator the User Guide does not document, so it is refused as unknown elsewhere (stricter reading).
_RESERVED_IN_OR = set(OPERATORS) | {"exactly", "=", "<", "<=", ">", ">="}
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_ANYTHING_BUT_OPS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


class InvalidEventPattern(TerraformError):
    """An event pattern PutRule would refuse: names the rule, the JSON path of the offending value and what
    was expected there."""

    def __init__(self, where: str, path: str, problem: str, expected: str):
        self.where, self.path, self.problem, self.expected = where, path, problem, expected
        super().__init__(f"{where}: invalid event_pattern at {path}: {problem}; expected {expected}")


def json_path(steps: tuple) -> str:
    out = "$"
    for s in steps:
        if isinstance(s, int):
            out += f"[{s}]"
        elif _PLAIN_KEY.match(s):
            out += f".{s}"
        else:
            out += f"[{json.dumps(s)}]"
    return out


def _describe(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(v) -> bool:
    # bool is an int in Python, but JSON true/false are not numbers
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, path: tuple, problem: str, expected: str):
        raise InvalidEventPattern(self.where, json_path(path), problem, expected)

    # ------------------------------------------------------------ structure
    def obj(self, node: dict, path: tuple, in_or: bool) -> int:
        """Check one object of the pattern; returns the product of the `$or` argument counts under it."""
        if not node:
            # event-ruler: "Empty objects are not allowed" (the guide never shows one)
            self.fail(path, "empty object", "at least one field")
        combos = 1
        for key, value in node.items():
            here = path + (key,)
            if key == "$or":
                combos *= self.or_(value, here)
                continue
            if in_or and key in _RESERVED_IN_OR:
                self.fail(here, f"field name {key!r} inside $or is a reserved filter keyword",
                          "a field of the event (operators go inside a value array)")
            if isinstance(value, dict):
                combos *= self.obj(value, here, in_or)
            elif isinstance(value, list):
                self.leaf(value, here)
            elif key in OPERATORS:
                # a filter written as a field, e.g. "key": {"prefix": "a/"} for "key": [{"prefix": "a/"}]
                self.fail(here, f"filter {key!r} is used as a field name, outside a value array",
                          f"the filter inside the field's array, e.g. [{{{json.dumps(key)}: {_describe(value)}}}]")
            else:
                self.fail(here, f"{_describe(value)} is neither an object nor an array",
                          "an object (nested fields) or a non-empty array of values to match")
        return combos

    def or_(self, value, path: tuple) -> int:
        # Content filtering, "Complex example with $or matching": an array of patterns, any of which matches;
        # event-ruler: "There must have at least 2 Objects in $or relationship."
        if not isinstance(value, list) or len(value) < 2:
            self.fail(path, f"$or is {_describe(value)}", "an array of at least two pattern objects")
        # the guide multiplies the argument counts of every $or array; nested ones are multiplied in too, which
        # counts more than the branches they expand to (stricter reading)
        combos = len(value)
        for i, branch in enumerate(value):
            if not isinstance(branch, dict):
                self.fail(path + (i,), f"$or element {_describe(branch)} is not an object", "a pattern object")
            combos *= self.obj(branch, path + (i,), in_or=True)
        return combos

    def leaf(self, values: list, path: tuple) -> None:
        # "Arrays in event patterns": "The value of each field in an event pattern is an array containing one
        # or more values"
        if not values:
            self.fail(path, "empty array", "a non-empty array of values to match")
        for i, v in enumerate(values):
            here = path + (i,)
            if isinstance(v, dict):
                self.operator(v, here)
            elif v is None or isinstance(v, (str, bool)):
                continue
            elif _is_number(v):
                if not math.isfinite(v):
                    self.fail(here, f"{v!r} is not a JSON number", "a finite number")
            else:
                # "The values that event patterns match follow JSON rules": strings, numbers, true, false, null
                self.fail(here, f"{_describe(v)} cannot be matched",
                          "a string, number, true, false, null or a one-key filter object such as {\"prefix\": ...}")

    # ------------------------------------------------------------ filters
    def operator(self, node: dict, path: tuple) -> None:
        if len(node) != 1:
            self.fail(path, f"filter object {_describe(node)} has {len(node)} keys",
                      "exactly one filter operator per object (" + ", ".join(OPERATORS) + ")")
        (op, operand), = node.items()
        here = path + (op,)
        if op not in OPERATORS:
            self.fail(here, f"unknown filter operator {op!r}", "one of " + ", ".join(OPERATORS))
        getattr(self, "op_" + op.replace("-", "_"))(operand, here)

    def op_prefix(self, operand, path: tuple, name: str = "prefix") -> None:
        # Prefix / suffix matching, and their "equals-ignore-case" variants
        if isinstance(operand, dict):
            if list(operand) != ["equals-ignore-case"]:
                self.fail(path, f"{name} object {_describe(operand)}",
                          f'a string or {{"equals-ignore-case": string}} for {name}')
            operand, path = operand["equals-ignore-case"], path + ("equals-ignore-case",)
        if not isinstance(operand, str):
            self.fail(path, f"{name} operand {_describe(operand)} is not a string",
                      f'a string or {{"equals-ignore-case": string}} for {name}')
        if operand == "":
            # event-ruler refuses an empty anything-but prefix/suffix ("Null prefix/suffix not allowed"); an
            # empty plain one would match every string, so it is refused too (stricter reading)
            self.fail(path, f"empty {name}", f"a non-empty string for {name}")

    def op_suffix(self, operand, path: tuple) -> None:
        self.op_prefix(operand, path, "suffix")

    def op_equals_ignore_case(self, operand, path: tuple) -> None:
        if not isinstance(operand, str):
            self.fail(path, f"equals-ignore-case operand {_describe(operand)} is not a string", "a string")

    def op_wildcard(self, operand, path: tuple) -> None:
        # Wildcard matching: `*` matches any characters, `\*` is a literal *, `\\` a literal backslash.
        # event-ruler refuses consecutive wildcards and a backslash escaping anything else.
        if not isinstance(operand, str):
            self.fail(path, f"wildcard operand {_describe(operand)} is not a string", "a string")
        if "**" in operand:
            self.fail(path, f"consecutive wildcard characters in {operand!r}", "single * wildcards")
        i = 0
        while i < len(operand):
            if operand[i] == "\\":
                if i + 1 >= len(operand) or operand[i + 1] not in "*\\":
                    self.fail(path, f"invalid escape at position {i} of {operand!r}",
                              "a backslash only before * or another backslash")
                i += 1
            i += 1

    def op_exists(self, operand, path: tuple) -> None:
        # Exists matching: { "exists": true } / { "exists": false }
        if not isinstance(operand, bool):
            self.fail(path, f"exists operand {_describe(operand)} is not a boolean", "true or false")

    def op_cidr(self, operand, path: tuple) -> None:
        # IP address matching: "cidr": "10.0.0.0/24", IPv4 or IPv6
        expected = 'an IPv4 or IPv6 CIDR block such as "10.0.0.0/24"'
        if not isinstance(operand, str):
            self.fail(path, f"cidr operand {_describe(operand)} is not a string", expected)
        address, _, bits = operand.partition("/")
        if not re.fullmatch(r"[0-9]+", bits):
            self.fail(path, f"cidr {operand!r} has no integer mask after one '/'", expected)
        try:
            net = ipaddress.ip_network(operand, strict=False)
        except ValueError as exc:
            self.fail(path, f"cidr {operand!r}: {exc}", expected)
        if int(bits) >= net.max_prefixlen:
            # event-ruler: "IPv4 mask bits must be < 32", "IPv6 mask bits must be < 128"
            self.fail(path, f"cidr {operand!r} has a /{bits} mask",
                      f"a mask below {net.max_prefixlen} (match a single address with a plain string value)")
        if net.network_address != ipaddress.ip_address(address):
            # event-ruler masks the host bits away; the guide only shows network addresses, so a block with
            # host bits set is refused (stricter reading: it usually means a typo)
            self.fail(path, f"cidr {operand!r} has host bits set", f"the network address {net}")

    def number(self, value, path: tuple, what: str) -> None:
        if not _is_number(value) or not math.isfinite(value):
            self.fail(path, f"{what} {_describe(value)} is not a number", "a JSON number")
        if not NUMERIC_MIN <= value <= NUMERIC_MAX:
            self.fail(path, f"{what} {value!r} is out of range",
                      f"a number between {NUMERIC_MIN:g} and {NUMERIC_MAX:g} inclusive")
        if isinstance(value, float) and -Decimal(repr(value)).as_tuple().exponent > NUMERIC_DECIMALS:
            self.fail(path, f"{what} {value!r} has more than {NUMERIC_DECIMALS} decimals",
                      f"at most {NUMERIC_DECIMALS} digits after the decimal point")

    def op_numeric(self, operand, path: tuple) -> None:
        # Numeric matching: ["=", n], ["<"|"<="|">"|">=", n] or a range [">"|">=", low, "<"|"<=", high]
        expected = ('["=", n], ["<", n], ["<=", n], [">", n], [">=", n] or a range '
                    '[">" or ">=", low, "<" or "<=", high] with low < high')
        if not isinstance(operand, list) or not operand:
            self.fail(path, f"numeric operand {_describe(operand)} is not a non-empty array", expected)
        if len(operand) not in (2, 4):
            self.fail(path, f"numeric array has {len(operand)} elements", expected)
        for i in range(0, len(operand), 2):
            op = operand[i]
            if not isinstance(op, str) or op not in _NUMERIC_OPS:
                self.fail(path + (i,), f"{_describe(op)} is not a numeric comparison operator",
                          "one of " + ", ".join(_NUMERIC_OPS))
            self.number(operand[i + 1], path + (i + 1,), f"operand of {op!r}")
        if len(operand) == 4:
            (low_op, low, high_op, high) = operand
            if low_op not in (">", ">="):
                self.fail(path + (0,), f"{low_op!r} cannot open a range", '">" or ">=" before the lower bound')
            if high_op not in ("<", "<="):
                self.fail(path + (2,), f"{high_op!r} cannot close a range", '"<" or "<=" before the upper bound')
            if not low < high:
                self.fail(path + (3,), f"range upper bound {high!r} is not above lower bound {low!r}",
                          "a lower bound less than the upper bound")

    def op_anything_but(self, operand, path: tuple) -> None:
        # Anything-but matching: a string, a number, a list of only strings or only numbers, or one
        # prefix / suffix / equals-ignore-case / wildcard object
        expected = ("a string, a number, a non-empty array of only strings or only numbers, or one of "
                    '{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": string}')
        if isinstance(operand, str):
            return
        if _is_number(operand):
            # event-ruler compares anything-but numbers as numbers: the numeric limits apply (stricter reading)
            return self.number(operand, path, "anything-but number")
        if isinstance(operand, list):
            if not operand:
                self.fail(path, "empty anything-but array", expected)
            if all(isinstance(v, str) for v in operand):
                return
            if all(_is_number(v) for v in operand):
                for i, v in enumerate(operand):
                    self.number(v, path + (i,), "anything-but number")
                return
            self.fail(path, f"anything-but array {_describe(operand)} mixes types or holds non-scalars", expected)
        if isinstance(operand, dict):
            if len(operand) != 1 or next(iter(operand)) not in _ANYTHING_BUT_OPS:
                self.fail(path, f"anything-but object {_describe(operand)}", expected)
            (op, inner), = operand.items()
            here = path + (op,)
            if not isinstance(inner, str):
                # The guide: "Anything-but matching only works with a single prefix, not a list"; it shows a
                # single string for suffix, equals-ignore-case and wildcard too (event-ruler has since taken
                # lists: refused here, the stricter reading)
                self.fail(here, f"anything-but {op} operand {_describe(inner)} is not a string", "a single string")
            if op in ("prefix", "suffix"):
                return self.op_prefix(inner, here, op)
            if op == "wildcard":
                return self.op_wildcard(inner, here)
            return
        self.fail(path, f"anything-but operand {_describe(operand)}", expected)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def validate_event_pattern(pattern, where: str = "event pattern", text: str | None = None,
                           max_chars: int = PATTERN_SIZE_QUOTA) -> dict:
    """Refuse what PutRule refuses, raising InvalidEventPattern (a TerraformError) that names `where` (file and
    resource), the JSON path and what was expected there. `pattern` is the JSON text or the parsed object;
    `text` is the JSON text as sent (Terraform's compact jsonencode), for the size quota. Returns the pattern."""
    if isinstance(pattern, str):
        text = pattern if text is None else text
        try:
            # Duplicate keys: "the last reference will be the one used" (content filtering), as json.loads does.
            pattern = json.loads(pattern, parse_constant=_reject_constant)
        except ValueError as exc:
            raise InvalidEventPattern(where, "$", f"not valid JSON ({exc})", "a JSON object") from None
    if not isinstance(pattern, dict):
        # "Event patterns have the same structure as the events they match": a JSON object
        raise InvalidEventPattern(where, "$", f"{_describe(pattern)} is not a JSON object", "a JSON object")
    if text is None:
        text = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False)
    if len(text) > max_chars:
        raise InvalidEventPattern(where, "$", f"pattern is {len(text)} characters",
                                  f"at most {max_chars} (EventBridge quota 'Event pattern size'; PutRule allows "
                                  f"{PUT_RULE_MAX_PATTERN} after a quota increase)")
    checker = _Checker(where)
    combos = checker.obj(pattern, (), in_or=False)
    if combos > MAX_OR_COMBINATIONS:
        raise InvalidEventPattern(where, "$", f"$or yields {combos} rule combinations",
                                  f"at most {MAX_OR_COMBINATIONS} (product of the $or argument counts)")
    return pattern
