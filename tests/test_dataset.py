import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import wiring
from harness.dataset import load_instances, load_rows, select, to_instances
from harness.errors import UserError
from tests.conftest import LITE


@pytest.fixture(scope="module")
def rows():
    return [i.to_row() for i in wiring.load("mini")]


@pytest.mark.skipif(not LITE.exists(), reason="needs ../shared/data beside the checkout")
def test_lite_file_has_300_instances_over_12_repos():
    instances = load_instances(str(LITE))
    assert len(instances) == 300
    assert len({i.repo for i in instances}) == 12
    django = [i for i in instances if i.repo == "django/django"]
    assert len(django) == 114
    assert all(i.fail_to_pass for i in instances)


def test_json_jsonl_and_parquet_give_the_same_instances(tmp_path, rows):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "d.json").write_text(json.dumps(rows))
    as_lists = [
        {
            **r,
            "FAIL_TO_PASS": json.loads(r["FAIL_TO_PASS"]),
            "PASS_TO_PASS": json.loads(r["PASS_TO_PASS"]),
        }
        for r in rows
    ]
    pq.write_table(pa.Table.from_pylist(as_lists), tmp_path / "d.parquet")
    loaded = [load_instances(str(tmp_path / f"d.{ext}")) for ext in ("jsonl", "json", "parquet")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert [i.instance_id for i in loaded[0]] == [r["instance_id"] for r in rows]
    assert loaded[2][0].fail_to_pass == tuple(json.loads(rows[0]["FAIL_TO_PASS"]))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda rs: [{k: v for k, v in rs[0].items() if k != "test_patch"}],
            "lacks column(s) test_patch",
        ),
        (lambda rs: [rs[0], rs[0]], "duplicate instance_id swe-monkeys__inventory-1"),
        (lambda rs: [{**rs[0], "FAIL_TO_PASS": "[not json"}], "FAIL_TO_PASS is not JSON"),
    ],
)
def test_bad_rows_are_one_line_errors(rows, mutate, message):
    with pytest.raises(UserError) as info:
        to_instances(mutate(rows), "data.jsonl")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_jsonl_line(tmp_path):
    with pytest.raises(UserError, match="dataset file not found: .*nope.jsonl"):
        load_rows(str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(UserError, match="bad.jsonl:2: not JSON"):
        load_rows(str(bad))


def test_hub_dataset_unreachable_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as info:
        load_rows("lite")
    assert "princeton-nlp/SWE-bench_Lite" in str(info.value)
    assert "--dataset" in str(info.value)


def test_selection_by_id_glob_and_regex(rows):
    instances = to_instances(rows, "mini")
    ids = lambda sel: [i.instance_id for i in select(instances, sel)]  # noqa: E731
    assert ids(["swe-monkeys__textkit-2"]) == ["swe-monkeys__textkit-2"]
    assert ids(["swe-monkeys__minicalc-*"]) == [f"swe-monkeys__minicalc-{i}" for i in range(1, 7)]
    assert ids([r"re:.*-1"]) == [
        "swe-monkeys__inventory-1",
        "swe-monkeys__minicalc-1",
        "swe-monkeys__textkit-1",
    ]
    assert len(ids(None)) == 20


def test_unknown_id_suggests_the_closest(rows):
    with pytest.raises(
        UserError, match=r"unknown instance id swe-monkeys__textkit-30 \(did you mean"
    ):
        select(to_instances(rows, "mini"), ["swe-monkeys__textkit-30"])
