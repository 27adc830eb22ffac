"""A wrong manifest is refused with the file, the line and the field named."""

from pathlib import Path

import pytest

from viss_bridge.catalog.catalog import CatalogError, load_catalog
from viss_bridge.catalog.manifest import ManifestError, load_manifest
from viss_bridge.demo.world import DEMO_CATALOG_DIR

GOOD = """\
dataset: sample
version: v1
title: {lv: "Paraugs", en: "Sample"}
owner: LV/GOV/90000000001/SAMPLE
key: [code]
subject: code
access: restricted
fields:
  - {name: code, type: string}
  - {name: born, type: date}
  - name: items
    type: list
    fields:
      - {name: label, type: string}
"""


def write(tmp_path: Path, text: str, name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str, name: str = "sample.yaml") -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_manifest(write(tmp_path, text, name))
    return caught.value


def test_good_manifest_loads(tmp_path: Path) -> None:
    dataset = load_manifest(write(tmp_path, GOOD))
    assert dataset.dataset == "sample"
    assert [f.name for f in dataset.fields] == ["code", "born", "items"]
    assert dataset.field("items").fields[0].name == "label"


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("type: date", "type: dat"))
    assert error.file.endswith("sample.yaml")
    assert error.line == 10
    assert error.field == "fields.born.type"
    assert "dat" in str(error) and "sample.yaml:10" in str(error)


def test_unknown_key_is_refused_not_ignored(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("access: restricted", "acess: restricted"))
    assert error.line == 7 and error.field == "acess"
    assert "unknown key" in str(error)


def test_missing_required_key(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("owner: LV/GOV/90000000001/SAMPLE\n", ""))
    assert error.field == "owner" and "missing" in str(error)


def test_key_must_be_a_field(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("key: [code]", "key: [nope]"))
    assert "nope" in str(error) and (error.line, error.field) == (5, "key")


def test_list_without_fields(tmp_path: Path) -> None:
    text = GOOD.replace("    fields:\n      - {name: label, type: string}\n", "")
    error = error_for(tmp_path, text)
    assert error.field == "fields.items" and error.line == 11


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("key: [code]", "key: [code"))
    assert error.line is not None and "YAML" in str(error)


def test_file_name_must_match_dataset(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD, name="other.yaml")
    assert error.field == "dataset" and error.line == 1


def test_catalog_collects_every_bad_manifest(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD.replace("sample", "second").replace("type: date", "type: when"), "second.yaml")
    write(tmp_path, "just a string\n", "third.yaml")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    files = sorted(Path(e.file).name for e in caught.value.errors)
    assert files == ["second.yaml", "third.yaml"]


def test_shipped_demo_catalog_is_valid() -> None:
    catalog = load_catalog(DEMO_CATALOG_DIR)
    assert {"fpr_person", "ur_company", "vzd_address", "viis_education", "vsaa_social_insurance"} <= set(catalog.datasets)


def test_register_defaults_to_the_dataset_name_and_is_validated(tmp_path: Path) -> None:
    assert load_manifest(write(tmp_path, GOOD)).register_key == "sample"
    declared = GOOD.replace("access: restricted\n", "access: restricted\nregister: LV/GOV/90000000001/SAMPLE/things\n")
    assert load_manifest(write(tmp_path, declared)).register_key == "LV/GOV/90000000001/SAMPLE/things"
    for bad in ("LV//x", "a b", "x" * 65, "/leading", "semi;colon"):
        error = error_for(tmp_path, GOOD.replace("access: restricted\n", f"access: restricted\nregister: '{bad}'\n"))
        assert error.field == "register" and error.line == 8, (bad, error)
    demo = load_catalog(DEMO_CATALOG_DIR)
    assert demo.get("fpr_person").register_key == "LV/GOV/90000100015/FPR/persons"


def test_unknown_source_key_is_refused_with_its_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD + "source:\n  kind: store\n  pth: data.csv\n")
    assert error.line == 17 and error.field.startswith("source") and error.field.endswith("pth")
    assert "unknown key" in str(error)


def test_csv_kind_is_refused_with_the_way_to_load_a_csv(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD + "source:\n  kind: csv\n")
    assert error.line == 16 and "catalog load" in str(error)
    assert load_manifest(write(tmp_path, GOOD + "source:\n  kind: store\n")).source.kind == "store"


def test_the_main_example_of_the_manifest_guide_validates(tmp_path: Path) -> None:
    """docs/manifests.md is what a new user copies first: its example must load as it stands."""
    guide = (Path(__file__).parents[2] / "docs" / "manifests.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    dataset = load_manifest(write(tmp_path, example, "csdd_vehicle.yaml"))
    assert dataset.dataset == "csdd_vehicle" and dataset.subject == "holder_code"


# -- objects, nested lists, lists of values, nillable, enum --------------------------------------

NESTED = """\
dataset: sample
title: {lv: "Paraugs", en: "Sample"}
owner: LV/GOV/90000000001/SAMPLE
key: [code]
fields:
  - {name: code, type: string}
  - name: technical
    type: object
    fields:
      - {name: fuel, type: string, enum: [petrol, diesel]}
      - {name: power_kw, type: integer, nillable: true}
  - name: owners
    type: list
    fields:
      - {name: person_code, type: string}
      - name: contacts
        type: list
        fields:
          - {name: kind, type: string, enum: [phone, email]}
  - {name: previous_plates, type: list, items: string, max_length: 8}
  - {name: grades, type: list, items: integer, enum: [1, 2, 3]}
  - name: mass
    type: object
    fields:
      - {name: value, type: decimal, xml: text}
      - {name: unit, type: string, xml: attribute, enum: [kg, t]}
"""


def test_every_construct_loads(tmp_path: Path) -> None:
    dataset = load_manifest(write(tmp_path, NESTED))
    technical = dataset.field("technical")
    assert technical.type.value == "object" and [f.name for f in technical.fields] == ["fuel", "power_kw"]
    assert technical.fields[0].enum == ("petrol", "diesel") and technical.fields[1].nillable
    contacts = dataset.field("owners").fields[1]
    assert contacts.is_object_list and contacts.fields[0].enum == ("phone", "email")
    plates = dataset.field("previous_plates")
    assert plates.is_value_list and plates.item_field.type.value == "string" and plates.item_field.max_length == 8
    assert dataset.field("grades").item_field.enum == (1, 2, 3)
    assert [f.xml for f in dataset.field("mass").fields] == ["text", "attribute"]


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), [
    # an object without fields
    ("    type: object\n    fields:\n      - {name: fuel, type: string, enum: [petrol, diesel]}\n"
     "      - {name: power_kw, type: integer, nillable: true}\n", "    type: object\n",
     7, "fields.technical", "object field needs 'fields'"),
    # a list with both items and fields
    ("        type: list\n        fields:\n          - {name: kind",
     "        type: list\n        items: string\n        fields:\n          - {name: kind",
     16, "fields.owners.fields.contacts", "not both"),
    # a list with neither
    ("{name: previous_plates, type: list, items: string, max_length: 8}", "{name: previous_plates, type: list}",
     20, "fields.previous_plates", "'items'"),
    # an unknown item type
    ("items: string, max_length: 8", "items: text", 20, "fields.previous_plates.items", "'text'"),
    # items on something that is not a list
    ("{name: code, type: string}", "{name: code, type: string, items: string}", 6, "fields.code", "only a list"),
    # fields on a scalar
    ("{name: code, type: string}", "{name: code, type: string, fields: [{name: x, type: string}]}", 6, "fields.code",
     "only an object or a list"),
    # an enum value of the wrong type, deep inside
    ("enum: [phone, email]", "enum: [phone, 7]", 19, "fields.owners.fields.contacts.fields.kind", "not a string"),
    ("enum: [1, 2, 3]", "enum: [1, two]", 21, "fields.grades", "not a integer"),
    # an enum naming a value twice; an empty enum; an enum on a type it cannot restrict
    ("enum: [petrol, diesel]", "enum: [petrol, petrol]", 10, "fields.technical.fields.fuel.enum", "more than once"),
    ("enum: [petrol, diesel]", "enum: []", 10, "fields.technical.fields.fuel.enum", "at least 1"),
    ("{name: power_kw, type: integer, nillable: true}", "{name: power_kw, type: date, enum: [x]}", 11,
     "fields.technical.fields.power_kw", "string and integer"),
    # an enum value longer than the field allows
    ("items: string, max_length: 8", "items: string, max_length: 2, enum: [abc]", 20, "fields.previous_plates",
     "longer than max_length"),
    # nillable on a list; a nillable key
    ("{name: previous_plates, type: list, items: string, max_length: 8}",
     "{name: previous_plates, type: list, items: string, nillable: true}", 20, "fields.previous_plates", "nillable"),
    ("{name: code, type: string}", "{name: code, type: string, nillable: true}", 4, "key", "nillable"),
    # a key or subject that is an object
    ("key: [code]", "key: [technical]", 4, "key", "must be a scalar, not object"),
    # xml: attributes and text: only inside structures, never nil, text only beside attributes
    ("{name: code, type: string}\n  - name: technical", "{name: code, type: string}\n  - {name: unit, type: string, "
     "xml: attribute}\n  - name: technical", 7, "fields.unit.xml", "inside an object"),
    ("{name: power_kw, type: integer, nillable: true}", "{name: power_kw, type: integer, nillable: true, xml: attribute}",
     11, "fields.technical.fields.power_kw", "cannot be nillable"),
    ("{name: power_kw, type: integer, nillable: true}", "{name: power_kw, type: integer, xml: text}", 7,
     "fields.technical", "must be xml: attribute (fuel are elements)"),
    ("{name: power_kw, type: integer, nillable: true}", "{name: power_kw, type: integer, xml: cdata}", 11,
     "fields.technical.fields.power_kw.xml", "'element', 'attribute' or 'text'"),
    ("{name: person_code, type: string}", "{name: person_code, type: string, xml: attribute}\n"
     "      - {name: pc, type: list, items: string, xml: attribute}", 16, "fields.owners.fields.pc",
     "only a scalar field"),
    # a misspelt key inside a nested object is refused with its line
    ("{name: kind, type: string, enum: [phone, email]}", "{name: kind, type: string, enmu: [phone, email]}", 19,
     "fields.owners.fields.contacts.fields.kind.enmu", "unknown key"),
])
def test_nested_manifest_errors_name_file_line_and_field(tmp_path: Path, old: str, new: str, line: int, field: str,
                                                        words: str) -> None:
    assert old in NESTED
    error = error_for(tmp_path, NESTED.replace(old, new, 1))
    assert (error.line, error.field) == (line, field), str(error)
    assert words in error.reason and f"sample.yaml:{line}" in str(error)


def test_the_manifest_guide_example_shows_every_construct(tmp_path: Path) -> None:
    """docs/manifests.md's example is the one place a user sees every shape: it must hold all of them."""
    guide = (Path(__file__).parents[2] / "docs" / "manifests.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    dataset = load_manifest(write(tmp_path, example, "csdd_vehicle.yaml"))

    def walk(fields):  # type: ignore[no-untyped-def]
        for f in fields:
            yield f
            yield from walk(f.fields or ())

    every = list(walk(dataset.fields))
    assert any(f.type.value == "object" for f in every)
    assert any(f.is_object_list and any(g.is_object_list for g in f.fields) for f in every)  # a list in a list
    assert any(f.is_value_list for f in every)
    assert any(f.nillable for f in every) and any(f.enum for f in every)
    # and the demo ships it, with records
    assert load_catalog(DEMO_CATALOG_DIR).get("csdd_vehicle") is not None


def test_every_yaml_example_of_the_manifest_guide_that_is_a_whole_manifest_validates(tmp_path: Path) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "manifests.md").read_text(encoding="utf-8")
    examples = [block.split("```", 1)[0] for block in guide.split("```yaml\n")[1:]]
    whole = [e for e in examples if "\nfields:" in e]
    assert len(whole) >= 2
    for example in whole:
        name = example.split("dataset: ", 1)[1].split()[0]
        assert load_manifest(write(tmp_path, example, f"{name}.yaml")).dataset == name
