from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from calltrack.numbers.models import NumberEvent, NumberKind, ReceivingNumber, TrackingNumber
from calltrack.numbers.services.importing import NumberImportError, numbers_export, numbers_import
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    campaign = CampaignFactory(campaign_id="spring", name="Spring sale")
    source = SourceFactory(source_id="radio", name="Radio")
    pool = NumberPoolFactory(key="main", campaign=campaign)
    return campaign, source, pool


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "numbers.csv"
    path.write_text(text.strip() + "\n")
    return str(path)


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_creates_static_and_pool_numbers_with_marketing_data(setup, tmp_path):
    campaign, source, pool = setup
    path = write(tmp_path, """
number,label,campaign,source,pool,failsafe_number,marketing_data,utm_medium
(415) 230-0001,Billboard,spring,radio,,303-230-0000,"{""utm_source"": ""radio""}",audio
+14152300002,,Spring sale,,main,,,
""")
    out, _ = run("numbers_import", path)
    assert "2 numbers were created" in out
    static = TrackingNumber.objects.get(number="+14152300001")
    assert (static.kind, static.campaign, static.source, static.failsafe_number) == (NumberKind.STATIC, campaign, source, "+13032300000")
    assert static.marketing_data == {"utm_source": "radio", "utm_medium": "audio"}
    assert (static.area_code, static.number_type, static.country) == ("415", "local", "US")
    pooled = TrackingNumber.objects.get(number="+14152300002")
    assert (pooled.kind, pooled.pool, pooled.campaign) == (NumberKind.POOL, pool, campaign)
    assert NumberEvent.objects.filter(reason="Imported", actor_label="numbers_import").count() == 2


def test_bad_lines_are_all_reported_with_line_column_and_reason_and_nothing_is_written(setup, tmp_path):
    TrackingNumberFactory(number="+14152300009")
    path = write(tmp_path, """
number,campaign,pool,kind,marketing_data
+14152300001,spring,,,
12345,spring,,,
+14152300001,spring,,,
+14152300003,nope,,,
+14152300004,spring,main,static,
+14152300005,spring,,static,[1]
+14152300009,spring,,,
+14152300006,spring,,weird,
""")
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(Path(path).read_text()))
    problems = [str(p) for p in exc.value.import_problems]
    assert problems == [
        "line 3, column 'number': '12345' is not a valid phone number: too short.",
        "line 4, column 'number': +14152300001 is also on line 2 (a number may appear once)",
        "line 5, column 'campaign': no campaign 'nope'",
        "line 6, column 'pool': a static number cannot be in a pool (set kind to 'pool' or clear the pool)",
        'line 7, column \'marketing_data\': must be a JSON object like {"utm_source": "radio"}',
        "line 8, column 'number': +14152300009 is already one of our numbers (use --update to change it)",
        "line 9, column 'kind': 'weird' is not one of: static, pool",
    ]
    assert TrackingNumber.objects.count() == 1
    with pytest.raises(CommandError, match=r"^7 bad lines; nothing was imported \(first: line 3"):
        run("numbers_import", path)


def test_skip_invalid_imports_the_good_lines_and_reports_the_bad(setup, tmp_path):
    path = write(tmp_path, """
number,campaign
+14152300001,spring
not-a-number,spring
""")
    out, err = run("numbers_import", path, "--skip-invalid")
    assert "1 numbers were created" in out and "1 lines skipped" in out
    assert "skipped line 3, column 'number'" in err
    assert TrackingNumber.objects.filter(number="+14152300001").exists()


def test_wrong_columns_are_refused_before_reading_lines(setup, tmp_path):
    with pytest.raises(CommandError, match="line 1, column 'number': the header has no 'number' column"):
        run("numbers_import", write(tmp_path, "phone,campaign\n+14152300001,spring"))
    with pytest.raises(CommandError, match="line 1, column 'colour': unknown column"):
        run("numbers_import", write(tmp_path, "number,colour\n+14152300001,red"))
    with pytest.raises(CommandError, match="no such file"):
        run("numbers_import", str(tmp_path / "missing.csv"))


def test_dry_run_writes_nothing(setup, tmp_path):
    out, _ = run("numbers_import", write(tmp_path, "number,campaign\n+14152300001,spring"), "--dry-run")
    assert "1 numbers would be created" in out
    assert not TrackingNumber.objects.exists()


def test_the_static_cap_is_enforced_over_the_whole_file(setup, tmp_path):
    campaign, source, _ = setup
    source.static_number_cap = 2
    source.save()
    TrackingNumberFactory(source=source, campaign=campaign)
    path = write(tmp_path, "number,campaign,source\n+14152300001,spring,radio\n+14152300002,spring,radio\n+14152300003,spring,radio")
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(Path(path).read_text()))
    assert [p.line for p in exc.value.import_problems] == [3, 4]
    assert "may hold 2 static numbers (its static number cap); it holds 1 and the file adds 3" in str(exc.value.import_problems[0])


def test_export_then_update_round_trips_and_is_idempotent(setup, tmp_path):
    campaign, source, pool = setup
    TrackingNumberFactory(number="+14152300001", campaign=campaign, source=source, label="Old", marketing_data={"a": "b"})
    TrackingNumberFactory(number="+14152300002", pool=pool, kind="pool", campaign=campaign)
    out = io.StringIO()
    assert numbers_export(out=out) == 2
    text = out.getvalue()
    assert text.splitlines()[0].startswith("number,label,kind,status,campaign,source,pool")
    assert "+14152300001,Old,static,active,spring,radio,," in text
    path = write(tmp_path, text.replace(",Old,", ",New,"))
    with pytest.raises(NumberImportError, match="2 bad lines"):
        numbers_import(file=io.StringIO(Path(path).read_text()))  # existing numbers need --update
    result = numbers_import(file=io.StringIO(Path(path).read_text()), update=True)
    assert (result.updated, result.unchanged) == (1, 1)
    tn = TrackingNumber.objects.get(number="+14152300001")
    assert tn.label == "New" and tn.marketing_data == {"a": "b"} and tn.source == source
    assert tn.events.get().changes == {"label": ["Old", "New"]}
    again = numbers_import(file=io.StringIO(Path(path).read_text()), update=True)
    assert (again.updated, again.unchanged) == (0, 2)


def test_update_cannot_move_a_number_to_another_pool(setup, tmp_path):
    campaign, _, pool = setup
    NumberPoolFactory(key="other", campaign=campaign)
    TrackingNumberFactory(number="+14152300002", pool=pool, kind="pool", campaign=campaign)
    path = write(tmp_path, "number,pool\n+14152300002,other")
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(Path(path).read_text()), update=True)
    assert "leaving a pool is quarantined first" in str(exc.value.import_problems[0])


def test_export_command_writes_a_file(setup, tmp_path):
    _, _, pool = setup
    TrackingNumberFactory(number="+14152300002", pool=pool, kind="pool", campaign=pool.campaign)
    target = tmp_path / "out.csv"
    out, _ = run("numbers_export", "--output", str(target), "--pool", "main")
    assert "1 numbers exported" in out
    assert "+14152300002" in target.read_text()


def test_receiving_numbers_import(tmp_path):
    path = write(tmp_path, "number,label,extension_digits,ring_timeout\n+13032300001,Denver,ww12#,45\n+13032300002,,,\n")
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(Path(path).read_text()), receiving=True)
    assert str(exc.value.import_problems[0]) == "line 3, column 'label': a receiving number needs a label"
    path = write(tmp_path, "number,label,extension_digits,ring_timeout\n+13032300001,Denver,ww12#,45\n")
    numbers_import(file=io.StringIO(Path(path).read_text()), receiving=True)
    line = ReceivingNumber.objects.get()
    assert (line.label, line.extension_digits, line.ring_timeout) == ("Denver", "ww12#", 45)


def test_marketing_data_is_exported_as_json(setup):
    campaign, _, _ = setup
    TrackingNumberFactory(campaign=campaign, marketing_data={"utm_source": "tv"})
    out = io.StringIO()
    numbers_export(out=out)
    import csv

    row = list(csv.DictReader(io.StringIO(out.getvalue())))[0]
    assert json.loads(row["marketing_data"]) == {"utm_source": "tv"}


def test_the_demo_numbers_round_trip_through_export_and_update(tmp_path):
    from calltrack.demo import demo_load

    demo_load(calls=0)
    target = tmp_path / "demo.csv"
    run("numbers_export", "--output", str(target))
    out, _ = run("numbers_import", str(target), "--update")
    count = TrackingNumber.objects.exclude(status="released").count()
    assert f"{count} lines: 0 numbers were created, 0 updated, {count} unchanged" in out
    assert f"{target.name}: checking {count}/{count} (100%)" in out  # plain progress lines off a terminal


def test_a_pool_number_may_name_a_source_but_not_marketing_data(setup, tmp_path):
    _, source, pool = setup
    path = write(tmp_path, 'number,pool,source,marketing_data\n+14152300002,main,radio,\n+14152300003,main,,"{""a"": 1}"')
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(Path(path).read_text()))
    assert [str(p) for p in exc.value.import_problems] == [
        "line 3, column 'marketing_data': pool numbers take marketing data from each visitor; leave it blank"]


def test_a_bad_line_is_named_by_its_line_in_the_file_after_blank_lines_and_multi_line_cells(setup, tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text(
        'number,label,campaign\n'
        '+14152300001,"Billboard\nnorth side",spring\n'  # lines 2-3: one record
        '\n'  # line 4: blank
        '12345,Radio,spring\n'  # line 5
    )
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO(path.read_text()))
    assert [str(p) for p in exc.value.import_problems] == ["line 5, column 'number': '12345' is not a valid phone number: too short."]
    _, err = run("numbers_import", str(path), "--skip-invalid")
    assert "skipped line 5, column 'number'" in err
    assert TrackingNumber.objects.get().label == "Billboard\nnorth side"


def test_receiving_number_import_names_the_file_line_after_a_blank_line(tmp_path):
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO("number,label\n+13035550100,Denver\n\n+13035550101,\n"), receiving=True)
    assert str(exc.value.import_problems[0]) == "line 4, column 'label': a receiving number needs a label"
