"""Event patterns checked as PutRule checks them (local_runtime/event_patterns.py).

moto 5.2.5 accepts patterns AWS refuses with InvalidEventPatternException; the runtime now refuses them when it
loads events.tf. These tests hold the validator to the EventBridge User Guide: every pattern events.tf defines
passes (loaded as the runtime loads it), the guide's own samples pass, and the invalid shapes are refused with
a message naming the rule and the JSON path of the offending value. Each test names the page it reproduces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_runtime.errors import TerraformError
from local_runtime.event_patterns import InvalidEventPattern, validate_event_pattern
from local_runtime.events import load_rules

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "env_files").glob("*_env.tfvars"))

PATTERNS_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html"
OPERATORS_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html"


def refused(pattern, path: str, where: str = "events.tf: aws_cloudwatch_event_rule.sample") -> InvalidEventPattern:
    with pytest.raises(InvalidEventPattern) as info:
        validate_event_pattern(pattern, where)
    exc = info.value
    assert exc.path == path, str(exc)
    assert str(exc).startswith(f"{where}: invalid event_pattern at {path}: "), str(exc)
    assert "expected" in str(exc)
    return exc


# ---------------------------------------------------------------- events.tf, loaded as the runtime loads it
@pytest.fixture(scope="module", params=ENV_FILES, ids=lambda p: p.name)
def runtime_rules(request, tmp_path_factory):
    """The rules of events.tf for one env file, read as Runtime does: Terraform over the tfvars the offline
    GitLab stand-in writes (so the deploy-trigger rule exists), then events.load_rules (which validates)."""
    from local_runtime.gitlab import LocalGitLab
    from local_runtime.terraform import Terraform

    env = request.param
    tf = Terraform(ROOT, LocalGitLab.offline_tfvars(env, tmp_path_factory.mktemp("ws")) or env)
    raw = {res: tf.attr("aws_cloudwatch_event_rule", res, "event_pattern")
           for res in tf.resources.get("aws_cloudwatch_event_rule", {})}
    return load_rules(tf), raw


def test_every_pattern_events_tf_defines_validates(runtime_rules):
    """Every event_pattern of events.tf passes PutRule's checks ("Creating Amazon EventBridge event patterns",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html, and "Comparison operators",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html), size included."""
    rules, raw = runtime_rules
    assert {r.resource.split("[")[0] for r in rules} >= {"data_arrival", "model_quality_breach", "state_change"}
    for rule in rules:
        text = raw[rule.resource]
        assert isinstance(text, str), rule.resource  # jsonencode(...) in events.tf
        assert validate_event_pattern(text, rule.resource) == rule.pattern


def test_load_rules_refuses_an_invalid_pattern_before_any_matching():
    """An events.tf rule whose pattern PutRule would refuse ("Arrays in event patterns": each value is "an array
    containing one or more values", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html)
    stops load_rules with a TerraformError naming the file, the resource and the path."""

    class OneRule:
        resources = {"aws_cloudwatch_event_rule": {"bad": {
            "__file__": "events.tf",
            "event_pattern": json.dumps({"source": ["aws.s3"], "detail": {"object": {"key": []}}})}}}

        def enabled(self, rtype, res):
            return True

        def attr(self, rtype, res, key, default=None):
            return self.resources[rtype][res].get(key, default)

    with pytest.raises(TerraformError, match=r"^events\.tf: aws_cloudwatch_event_rule\.bad: invalid event_pattern "
                                             r"at \$\.detail\.object\.key: empty array"):
        load_rules(OneRule())


# ---------------------------------------------------------------- the guide's valid samples
@pytest.mark.parametrize("pattern", [
    {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
     "detail": {"state": ["terminated"]}},
    {"source": ["aws.ec2", "aws.fargate"]},
    {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance Launch Successful"],
     "detail": {"responseElements": [None]}},
    {"source": ["aws.macie"], "detail-type": ["Macie Finding"], "detail": {"severity": {"score": [1]}, "count": [2]}},
])
def test_samples_of_creating_event_patterns_pass(pattern):
    """Samples of "Creating Amazon EventBridge event patterns",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html (field, value, null matching)."""
    assert validate_event_pattern(json.dumps(pattern)) == pattern


@pytest.mark.parametrize("pattern", [
    {"detail": {"eventVersion": [""]}},
    {"detail": {"responseElements": [None]}},
    {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                   "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
                   "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]},
])
def test_samples_of_null_empty_and_array_matching_pass(pattern):
    """Samples of "Matching null values and empty strings"
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html) and "Arrays in
    event patterns" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html)."""
    assert validate_event_pattern(pattern) == pattern


OPERATOR_SAMPLES = {
    "and": {"Location": ["New York"], "Day": ["Monday"]},
    "anything-but": {"state": [{"anything-but": "initializing"}]},
    "anything-but number": {"detail": {"x-limit": [{"anything-but": 123}]}},
    "anything-but strings": {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
    "anything-but numbers": {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
    "anything-but begins with": {"Region": [{"anything-but": {"prefix": "us-"}}]},
    "anything-but ends with": {"FileName": [{"anything-but": {"suffix": ".png"}}]},
    "anything-but ignore case": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
    "anything-but wildcard": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
    "begins with": {"Region": [{"prefix": "us-"}]},
    "begins with ignore case": {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]},
    "empty": {"LastName": [""]},
    "equals": {"Name": ["Alice"]},
    "equals ignore case": {"Name": [{"equals-ignore-case": "alice"}]},
    "ends with": {"FileName": [{"suffix": ".png"}]},
    "ends with ignore case": {"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]},
    "exists": {"ProductName": [{"exists": True}]},
    "does not exist": {"ProductName": [{"exists": False}]},
    "not": {"Weather": [{"anything-but": ["Raining"]}]},
    "null": {"UserID": [None]},
    "numeric equals": {"Price": [{"numeric": ["=", 100]}]},
    "numeric range": {"Price": [{"numeric": [">", 10, "<=", 20]}]},
    "or": {"PaymentType": ["Credit", "Debit"]},
    "or multiple fields": {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
    "wildcard": {"FileName": [{"wildcard": "dir/*.png"}]},
    "prefix time": {"time": [{"prefix": "2017-10-02"}]},
    "numeric": {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"numeric": ["=", 3.018e2]}]}},
    "cidr": {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
    "complex": {"time": [{"prefix": "2017-10-02"}],
                "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"anything-but": [100, 200, 300]}]}},
    "complex $or": {"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                                       {"d-count": [{"numeric": ["<", 10]}]},
                                       {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}},
}


@pytest.mark.parametrize("name", sorted(OPERATOR_SAMPLES))
def test_samples_of_the_comparison_operators_pass(name):
    """The "Rule syntax" column and the section samples of "Comparison operators for use in event patterns"
    (content filtering), https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html."""
    pattern = OPERATOR_SAMPLES[name]
    assert validate_event_pattern(json.dumps(pattern)) == pattern


def test_ipv6_blocks_and_escaped_wildcards_pass():
    """"IP address matching" works "for IPv4 and IPv6 addresses"; in wildcards "\\*" is a literal * and "\\\\" a
    literal backslash (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    validate_event_pattern({"detail": {"ip": [{"cidr": "2001:db8::/32"}]}})
    validate_event_pattern({"detail": {"name": [{"wildcard": "a\\*b\\\\c*"}]}})


# ---------------------------------------------------------------- refused: structure
@pytest.mark.parametrize("pattern", ["[]", '"aws.s3"', "42", "null", ["source"], 3])
def test_a_pattern_that_is_not_an_object_is_refused(pattern):
    """An event pattern is a JSON object with "the same structure as the events they match" ("Creating Amazon
    EventBridge event patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html)."""
    assert "not a JSON object" in str(refused(pattern, "$"))


def test_invalid_json_is_refused():
    """PutRule's EventPattern is a JSON document (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html);
    NaN is no JSON number."""
    refused('{"source": ["aws.s3"]', "$")
    refused('{"detail": {"n": [NaN]}}', "$")
    refused({"detail": {"n": [float("nan")]}}, "$.detail.n[0]")


def test_an_empty_array_leaf_is_refused():
    """"The value of each field in an event pattern is an array containing one or more values" ("Arrays in event
    patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html)."""
    assert "empty array" in str(refused({"source": []}, "$.source"))
    refused({"detail": {"object": {"key": []}}}, "$.detail.object.key")


@pytest.mark.parametrize("value", ["aws.s3", 5, True, None])
def test_a_scalar_leaf_is_refused(value):
    """"In an event pattern, the value to match is in a JSON array" ("Creating Amazon EventBridge event patterns",
    Match values, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html)."""
    assert "neither an object nor an array" in str(refused({"detail": {"source": value}}, "$.detail.source"))


def test_empty_objects_and_nested_arrays_are_refused():
    """Match values "follow JSON rules": strings, numbers, true, false and null ("Creating Amazon EventBridge event
    patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html); an empty object
    selects nothing (event-ruler: "Empty objects are not allowed")."""
    refused({}, "$")
    refused({"detail": {}}, "$.detail")
    refused({"detail": {"tags": [["a", "b"]]}}, "$.detail.tags[0]")


def test_a_pattern_over_the_size_quota_is_refused():
    """"Event pattern size": 2,048 characters by default ("Amazon EventBridge quotas",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html)."""
    big = {"source": ["x" * 2100]}
    assert "2048" in str(refused(big, "$"))
    validate_event_pattern(big, max_chars=4096)  # an account with a raised quota


# ---------------------------------------------------------------- refused: operators
def test_an_unknown_operator_is_refused():
    """Only the operators of "Comparison operators for use in event patterns" exist
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html): no "contains",
    no "regex", no event-ruler-only "exactly"."""
    for op in ("contains", "regex", "exactly", "Prefix"):
        assert "unknown filter operator" in str(refused({"detail": {"type": [{op: "x"}]}}, f"$.detail.type[0].{op}"))


def test_a_filter_object_with_two_operators_is_refused():
    """Each filter in a value array is one operator object ("Comparison operators",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    refused({"FileName": [{"prefix": "a", "suffix": ".png"}]}, "$.FileName[0]")


@pytest.mark.parametrize("numeric, path", [
    (["==", 5], "[0]"), (["gt", 5], "[0]"), ([5, ">"], "[0]"),
    ([">", "5"], "[1]"), ([">", True], "[1]"), (["=", None], "[1]"),
    ([], ""), ("> 5", ""), ([">", 5, "<"], ""), ([">", 0, "<=", 5, "<", 7], ""),
    (["<", 10, ">", 0], "[0]"), ([">", 0, ">=", 5], "[2]"),
    ([">", 5, "<", 5], "[3]"), ([">=", 10, "<=", 1], "[3]"),
    (["<", 5.0e9], "[1]"), (["=", 0.1234567], "[1]"),
])
def test_numeric_with_a_bad_operator_or_operand_is_refused(numeric, path):
    """Numeric matching takes operator/number pairs: "=", "<", "<=", ">", ">=", a range opens with ">" or ">="
    and closes with "<" or "<=", on JSON numbers "between -1.0e9 and +1.0e9 inclusive" with at most six decimals
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    refused({"detail": {"c-count": [{"numeric": numeric}]}}, "$.detail.c-count[0].numeric" + path)


@pytest.mark.parametrize("operand", ["true", 1, 0, None, [True]])
def test_exists_with_anything_but_a_boolean_is_refused(operand):
    """Exists matching takes true or false (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    assert "true or false" in str(refused({"detail": {"state": [{"exists": operand}]}}, "$.detail.state[0].exists"))


@pytest.mark.parametrize("pattern, path", [
    ({"time": [{"prefix": 2017}]}, "$.time[0].prefix"),
    ({"time": [{"prefix": ["2017", "2018"]}]}, "$.time[0].prefix"),
    ({"time": [{"prefix": ""}]}, "$.time[0].prefix"),
    ({"s": [{"prefix": {"wildcard": "a*"}}]}, "$.s[0].prefix"),
    ({"s": [{"suffix": {"equals-ignore-case": 5}}]}, "$.s[0].suffix.equals-ignore-case"),
    ({"s": [{"suffix": {"equals-ignore-case": "a", "prefix": "b"}}]}, "$.s[0].suffix"),
    ({"s": [{"equals-ignore-case": ["a"]}]}, "$.s[0].equals-ignore-case"),
    ({"s": [{"wildcard": "a**b"}]}, "$.s[0].wildcard"),
    ({"s": [{"wildcard": "a\\b"}]}, "$.s[0].wildcard"),
    ({"s": [{"wildcard": 5}]}, "$.s[0].wildcard"),
])
def test_prefix_suffix_equals_ignore_case_and_wildcard_operands_are_checked(pattern, path):
    """prefix / suffix take a string or {"equals-ignore-case": string}; equals-ignore-case and wildcard take a
    string, wildcard with single * and backslash escapes of * and \\ only ("Comparison operators",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    refused(pattern, path)


@pytest.mark.parametrize("operand, path", [
    ({"numeric": [">", 5]}, ""), ({"exists": True}, ""), ({"prefix": "a", "suffix": "b"}, ""),
    ({"anything-but": "a"}, ""), ([], ""), (["a", 1], ""), ([None], ""), ([{"prefix": "a"}], ""),
    (True, ""), (None, ""), ({"prefix": ["init", "error"]}, ".prefix"), ({"prefix": ""}, ".prefix"),
    ({"wildcard": "a**"}, ".wildcard"), ({"equals-ignore-case": 3}, ".equals-ignore-case"),
    (5.0e9, ""), ([1, 2.00000001], "[1]"),
])
def test_anything_but_misuse_is_refused(operand, path):
    """Anything-but takes a string, a number, a list of only strings or only numbers, or one prefix / suffix /
    equals-ignore-case / wildcard object; "Anything-but matching only works with a single prefix, not a list"
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    refused({"detail": {"state": [{"anything-but": operand}]}}, "$.detail.state[0].anything-but" + path)


@pytest.mark.parametrize("cidr", ["10.0.0.0", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/33", "10.0.0.0/32",
                                  "10.0.0.1/24", "10.0.0/24", "host.example/24", "2001:db8::/128", 10])
def test_a_malformed_cidr_is_refused(cidr):
    """IP address matching takes a CIDR block such as "10.0.0.0/24", IPv4 or IPv6
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    refused({"detail": {"sourceIPAddress": [{"cidr": cidr}]}}, "$.detail.sourceIPAddress[0].cidr")


def test_an_operator_used_outside_a_value_array_is_refused():
    """"Comparison operators only work on leaf nodes, with the exception of $or and anything-but": a filter sits
    inside a field's value array, never as the field's value
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    exc = refused({"detail": {"object": {"key": {"prefix": "abalone/"}}}}, "$.detail.object.key.prefix")
    assert "inside the field's array" in str(exc)
    refused({"detail": {"state": {"anything-but": "initializing"}}}, "$.detail.state.anything-but")


# ---------------------------------------------------------------- refused: $or
@pytest.mark.parametrize("value, path", [
    ([{"Location": ["New York"]}], "$.$or"),
    ([], "$.$or"),
    ({"Location": ["New York"]}, "$.$or"),
    ([{"Location": ["New York"]}, ["Monday"]], "$.$or[1]"),
    ([{"Location": ["New York"]}, {}], "$.$or[1]"),
    ([{"Location": ["New York"]}, {"prefix": ["Mon"]}], "$.$or[1].prefix"),
    ([{"Location": ["New York"]}, {"Day": []}], "$.$or[1].Day"),
])
def test_or_needs_two_or_more_valid_patterns(value, path):
    """"$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]: an array of patterns, any of which matches
    ("Or (multiple fields)", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html);
    fewer than two, non-objects and filter keywords as field names are refused."""
    refused({"source": ["aws.cloudwatch"], "$or": value}, path)


def test_or_over_1000_combinations_is_refused():
    """PutRule throws InvalidEventPatternException "if the use of $or results in over 1000 rule combinations",
    counted by multiplying the argument counts of every $or array
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    def ors(n, field):
        return [{f"{field}{i}": ["x"]} for i in range(n)]

    validate_event_pattern({"a": {"$or": ors(10, "a")}, "b": {"$or": ors(10, "b")}, "c": {"$or": ors(10, "c")}},
                           max_chars=4096)
    exc = refused({"a": {"$or": ors(10, "a")}, "b": {"$or": ors(10, "b")}, "c": {"$or": ors(11, "c")}}, "$")
    assert "1100" in str(exc)


def test_the_error_is_a_terraform_error_naming_rule_path_and_expectation():
    """The runtime reports Terraform problems as TerraformError naming file and resource; the pattern error adds
    the JSON path and what was expected there (numeric matching,
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    with pytest.raises(TerraformError) as info:
        validate_event_pattern({"detail-type": ["x"], "detail": {"mse": [{"numeric": [">", "5.5"]}]}},
                               'events.tf: aws_cloudwatch_event_rule.model_quality_breach["training_hpo"]')
    assert str(info.value) == (
        'events.tf: aws_cloudwatch_event_rule.model_quality_breach["training_hpo"]: invalid event_pattern at '
        '$.detail.mse[0].numeric[1]: operand of \'>\' "5.5" is not a number; expected a JSON number')
