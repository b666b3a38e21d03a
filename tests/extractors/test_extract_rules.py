"""Rule files: the bundled ones load; broken ones raise ConfigError naming the file and the entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from extract_helpers import RECEIVED, make_transcript  # noqa: I001

from pipeline.errors import ConfigError
from pipeline.extractors import RULES_VERSION, extract_ticket
from pipeline.extractors.registry import EXTRACTORS, run_order
from pipeline.extractors.rules import RULE_FILES, RULES_DIR, load_rules
from pipeline.text.chinese import detect_language, fold, to_simplified


def test_bundled_rules_load_and_are_versioned() -> None:
    rules = load_rules()
    assert load_rules() is rules  # cached
    assert set(rules.versions) == set(RULE_FILES)
    for name in RULE_FILES:
        assert f"{name}@{rules.versions[name]}" in RULES_VERSION
    assert "other" in rules.categories
    for code, category in rules.categories.items():
        assert "." in code or code == "other"
        assert category.department


def test_every_field_module_registered_in_dependency_order() -> None:
    names = [r.name for r in run_order()]
    assert set(names) == set(EXTRACTORS)
    for needed, user in (("category", "request_type"), ("category", "urgency"), ("urgency", "department"),
                         ("location", "department"), ("category", "summary")):
        assert names.index(needed) < names.index(user)


def _copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    for name in RULE_FILES:
        shutil.copy(RULES_DIR / f"{name}.yaml", target / f"{name}.yaml")
    return target


BROKEN = [
    ("taxonomy", "categories:\n  - [unclosed", "taxonomy.yaml"),
    ("taxonomy", 'version: "x"\nnegators: {zh: [不是], en: ["not"]}\ncategories:\n  traffic.road:\n'
                 "    department: x\n    request_type: grumble\n    urgency: normal\n    cues: {坑: 2}\n",
     "request_type"),
    ("taxonomy", 'version: "x"\nnegators: {zh: [不是], en: ["not"]}\ncategories:\n  traffic.road:\n'
                 "    department: x\n    request_type: report\n    urgency: normal\n    cues: {坑: lots}\n",
     "categories.traffic.road.cues.坑"),
    ("taxonomy", 'version: "x"\nnegators: {zh: [不是], en: ["not"]}\ncategories:\n  traffic.road:\n'
                 "    department: x\n    request_type: report\n    urgency: normal\n    cues: {}\n",
     "'other' is missing"),
    ("urgency", 'version: "x"\nlimits_hours: {emergency: 2, urgent: 24}\nemergency: {}\nurgent: {}\n',
     "limits_hours.normal"),
    ("vulnerable", 'version: "x"\nelderly_age: 60\nchild_age: 14\ngroups:\n  teenager: [少年]\n',
     "groups.teenager"),
    ("agent_script", 'version: "x"\nclause_max_chars: {zh: 30, en: 100}\nclause: ["(unclosed"]\nspan: []\n',
     "clause[0]"),
    ("departments", 'version: "x"\ncity_prefix: 北京市\ndistricts: [朝阳区]\nemergency: {no.such: "119"}\n',
     "emergency.no.such"),
    ("contact", "phone_cues: [电话]\n", "version"),
    ("urgency", 'version: "x"\nlimits_hours: {emergency: 2, urgent: 24, normal: 168}\nemergency: {}\n'
                "urgent: {暖气…不热…了: 3}\n", "gapped cue"),
    ("request_type", 'version: "x"\ncategory_prior: 2\ncue_prior: 1\ntypes:\n  complaint: [投诉]\n',
     "types.complaint"),
]


@pytest.mark.parametrize(("name", "content", "where"), BROKEN)
def test_broken_rule_file_raises_config_error(tmp_path: Path, name: str, content: str, where: str) -> None:
    directory = _copy_rules(tmp_path)
    (directory / f"{name}.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(directory)
    message = str(info.value)
    assert f"{name}.yaml" in message
    assert where in message


def test_missing_rule_file(tmp_path: Path) -> None:
    directory = _copy_rules(tmp_path)
    (directory / "urgency.yaml").unlink()
    with pytest.raises(ConfigError, match="urgency.yaml: missing"):
        load_rules(directory)


def test_a_changed_rule_directory_changes_the_result(tmp_path: Path) -> None:
    directory = _copy_rules(tmp_path)
    path = directory / "taxonomy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("      噪音: 5\n", "      噪音: 0\n")
                    .replace("      noise: 5\n", "      noise: 0\n").replace("      吵: 2\n", "      吵: 0\n"),
                    encoding="utf-8")
    rules = load_rules(directory)
    draft = extract_ticket(make_transcript([("caller", "楼下噪音")]), received_at=RECEIVED, rules=rules)
    assert draft.category == "other"


@pytest.mark.parametrize(("text", "simplified"), [("我們這裡停電了", "我们这里停电了"), ("暖氣不熱", "暖气不热"),
                                                  ("電話號碼", "电话号码"), ("樓上漏水", "楼上漏水")])
def test_to_simplified_keeps_length(text: str, simplified: str) -> None:
    assert to_simplified(text) == simplified
    assert len(to_simplified(text)) == len(text)


def test_fold_keeps_offsets() -> None:
    text = "ＡＢＣ１２３ Hello 電話"
    assert fold(text) == "abc123 hello 电话"
    assert len(fold(text)) == len(text)


@pytest.mark.parametrize(("text", "language"), [("我们小区停水了", "zh"), ("There is a pothole", "en"),
                                                ("I live in 朝阳 district near the park", "en"),
                                                ("我住在Maple Avenue附近，停电了", "zh")])
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language
