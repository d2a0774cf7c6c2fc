"""steplib.schema: the one reader of scripts/dataset_schema.json (validation and typed access)."""

from __future__ import annotations

import json

import pytest

from steplib import schema as sl


def make(**over):
    data = {
        "name": "toy",
        "columns": [
            {"name": "grade", "type": "categorical", "categories": [3, 4, 5, 6, 8]},
            {"name": "colour", "type": "categorical", "categories": ["red", "blue"], "unknown_category": "ignore"},
            {"name": "price", "type": "float"},
            {"name": "width", "type": "int", "min": 0, "max": 10},
            {"name": "size", "type": "float", "min": 0.5},
        ],
        "target": "price",
    }
    data.update(over)
    return data


def test_shipped_schema_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "dataset_schema.json"
    schema = sl.load_schema(str(path))
    assert schema.target in schema.names
    assert schema.target not in schema.feature_names


def test_typed_access_target_not_last_and_numeric_labels():
    schema = sl.from_dict(make())
    assert schema.names == ["grade", "colour", "price", "width", "size"]
    assert schema.target_index == 2
    assert schema.feature_names == ["grade", "colour", "width", "size"]
    assert [c.name for c in schema.numeric_features] == ["width", "size"]
    assert [c.name for c in schema.categorical_features] == ["grade", "colour"]
    grade = schema.column("grade")
    assert grade.categories == ("3", "4", "5", "6", "8")
    assert grade.category("4") == "4" and grade.category("4.0") == "4" and grade.category("7") is None
    assert grade.category("four") is None
    assert schema.column("colour").category("red") == "red" and schema.column("colour").category("Red") is None
    assert grade.unknown_category == "error" and schema.column("colour").unknown_category == "ignore"
    width = schema.column("width")
    assert (width.min, width.max) == (0.0, 10.0) and width.in_range(10) and not width.in_range(10.5)
    assert schema.column("size").in_range(1e9) and not schema.column("size").in_range(0.4)
    assert schema.is_missing(" NA ") and schema.is_missing("") and not schema.is_missing("0")
    assert schema.missing_features == "impute"


def test_top_level_unknown_category_policy_is_the_default():
    schema = sl.from_dict(make(unknown_category="most_frequent"))
    assert schema.column("grade").unknown_category == "most_frequent"
    assert schema.column("colour").unknown_category == "ignore"  # the column's own wins


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(target="nope"), "target 'nope' is not one of the columns"),
    (lambda d: d.update(target="grade"), "is categorical"),
    (lambda d: d["columns"].append({"name": "price", "type": "float"}), "duplicate column name 'price'"),
    (lambda d: d["columns"][0].update(categories=[]), "categories"),
    (lambda d: d["columns"][0].update(categories=[3, "x"]), "all strings or all numbers"),
    (lambda d: d["columns"][0].update(categories=[4, 4.0]), "non-unique"),
    (lambda d: d["columns"][1].update(categories=["red", "__missing__"]), "distinct"),
    (lambda d: d["columns"][3].update(min=5, max=1), "min 5 is above max 1"),
    (lambda d: d["columns"][2].update(type="text"), "columns/2/type"),
    (lambda d: d["columns"][2].update(categories=["a"]), "columns/2"),
    (lambda d: d["columns"][1].update(unknown_category="guess"), "columns/1/unknown_category"),
    (lambda d: d.update(missing_values={"features": "drop"}), "missing_values/features"),
    (lambda d: d.update(missing_values={"tokens": ["red"]}), "also missing-value tokens"),
    (lambda d: d.update(colour="x"), "Additional properties"),
    (lambda d: d.pop("target"), "'target' is a required property"),
])
def test_invalid_schemas_are_refused_naming_the_key(change, expected):
    data = make()
    change(data)
    with pytest.raises(sl.SchemaError) as err:
        sl.from_dict(data, "my_schema.json")
    assert "my_schema.json" in str(err.value)
    assert expected in str(err.value)


def test_load_schema_errors_name_the_file(tmp_path):
    with pytest.raises(sl.SchemaError, match="schema file not found"):
        sl.load_schema(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(sl.SchemaError, match=r"bad.json: not valid JSON"):
        sl.load_schema(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make()))
    schema = sl.load_schema(str(good))
    assert json.loads(schema.to_json()) == make()


def test_semantic_checks_hold_without_jsonschema(monkeypatch):
    """A container without jsonschema still refuses what the typed reader cannot read."""
    import builtins

    real_import = builtins.__import__

    def no_jsonschema(name, *args, **kwargs):
        if name == "jsonschema":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jsonschema)
    data = make()
    data["columns"][2]["type"] = "text"
    with pytest.raises(sl.SchemaError, match="type 'text'"):
        sl.from_dict(data)
    assert sl.from_dict(make()).target == "price"
