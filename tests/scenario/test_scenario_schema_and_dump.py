"""The JSON schema for editors, the canonical YAML dump, and the docs keep up with the schema."""

import json
import re
from pathlib import Path

from ciarsim.scenario import dump_scenario, expand, parse_scenario, scenario_json_schema
from ciarsim.scenario.jsonschema import all_models, field_help

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))



def test_json_schema_is_json_with_every_section():
    schema = json.loads(json.dumps(scenario_json_schema()))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] and schema["description"]
    sections = {"name", "seed", "workload", "models", "network", "policies", "sweep"}
    assert set(schema["properties"]) >= sections
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]["policies"]["items"]["discriminator"]["mapping"]) == {
        "base", "device_only", "sd", "lantern", "code_split", "gated", "ciar", "oracle",
        "ciar_pipelined", "ciar_batched", "cloud_burst", "plugin", "adaptive",
    }  # fmt: skip


def test_every_field_has_a_description():
    schema = scenario_json_schema()
    nodes = [schema, *schema["$defs"].values()]
    for node in nodes:
        assert node.get("description"), node.get("title")
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{node.get('title')}.{name}"


def test_every_field_is_documented_in_docs():
    text = (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    for cls in all_models():
        for field in cls.model_fields:
            assert field_help(cls, field), f"{cls.__name__}.{field} has no help"
            pattern = rf"`(?:[\w-]+\.)*{field}(?:\.[\w-]+)*`"
            assert re.search(pattern, text), f"docs/scenario-format.md does not mention `{field}`"


def test_dump_is_canonical_and_round_trips():
    sc = parse_scenario(SHIPPED[0].read_text(encoding="utf-8"))
    text = dump_scenario(sc)
    assert text == dump_scenario(parse_scenario(text))
    assert parse_scenario(text) == sc
    assert text.startswith("name: ")
    assert "- name: base\n" in text


def test_dump_of_a_sweep_keeps_it():
    sc = parse_scenario("sweep: {network.message_header_bytes: [1, 2]}\n")
    assert parse_scenario(dump_scenario(sc)).sweep == {"network.message_header_bytes": [1, 2]}


def test_shipped_paths_exist_relative_to_repo():
    assert all(Path(p).is_file() for p in SHIPPED)


def test_the_docs_example_is_a_valid_scenario():
    text = (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert len(expand(parse_scenario(example, "docs example"))) == 6
