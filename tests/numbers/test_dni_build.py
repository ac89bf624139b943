"""The DNI tag pages load is the minified build of its readable source, and stays under 3 KB gzipped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_dni():
    spec = importlib.util.spec_from_file_location("build_dni", ROOT / "scripts" / "build_dni.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_served_tag_is_the_build_of_its_readable_source(build_dni):
    source = build_dni.SOURCE.read_text(encoding="utf-8")
    assert build_dni.BUILD.read_text(encoding="utf-8") == build_dni.build(source), "run `make dni` and commit the build"
    assert "/*" not in build_dni.build(source).split("\n", 1)[1]  # comments stay in the source


def test_the_served_tag_is_under_3_kb_gzipped(build_dni):
    size = build_dni.gzipped_size(build_dni.BUILD.read_text(encoding="utf-8"))
    assert size < 3072, f"static/calltrack/dni.js is {size} bytes gzipped"


def test_the_tag_keeps_the_url_customers_embed(build_dni):
    assert Path(finders.find("calltrack/dni.js")) == build_dni.BUILD


def test_the_build_check_fails_on_a_build_edited_by_hand(build_dni, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "dni.js"
    stale.write_text(build_dni.BUILD.read_text(encoding="utf-8").replace("data-pool", "data-poll"), encoding="utf-8")
    monkeypatch.setattr(build_dni, "BUILD", stale)
    assert build_dni.main(["--check"]) == 1
    assert "make dni" in capsys.readouterr().err
    assert build_dni.main([]) == 0  # the build rewrites it
    assert build_dni.main(["--check"]) == 0
