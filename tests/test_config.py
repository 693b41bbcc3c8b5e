"""Config errors name the file, the line and the key path, and exit with the usage code (2)."""

from __future__ import annotations

import pytest

from conftest import write_config

GOOD = """
store: s.duckdb
sources:
  - name: files
    type: focus
    path: data
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sources: [\n  - name: x\n", "malformed YAML"),
        ("store: s.duckdb\nsorces: []\n", "finops.yaml:2: sorces: unknown key 'sorces' in the top level"),
        ("sources:\n  - name: a\n    type: focus\n    path: x\n    colour: red\n",
         "finops.yaml:5: sources[0].colour: unknown key 'colour'"),
        ("report:\n  top: many\n", "finops.yaml:2: report.top: input should be a valid integer"),
        ("sources:\n  - name: a\n    type: focus\n    path: x\n    start: 2024-13-45\n", "sources[0].start"),
        ("sources:\n  - {name: a, type: focus, path: x}\n  - {name: a, type: focus, path: y}\n",
         "finops.yaml:3: sources[1].name: duplicate source name 'a'"),
        ("sources:\n  - {name: a, type: ftp, path: x}\n", "unknown source type 'ftp'"),
        ("sources:\n  - {name: a, type: focus}\n", "sources[0].path: missing required key 'path'"),
        ("store: a\nstore: b\n", "finops.yaml:2: duplicate key 'store'"),
        ("report:\n  last: fortnight\n", "report.last"),
        ("sources:\n  - {name: a, type: focus, path: x, refresh: soon}\n", "sources[0].refresh"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_config_is_rejected_with_file_line_and_key(finops, tmp_path, text, expected):
    config = write_config(tmp_path, text)
    result = finops("-c", config, "config", "validate")
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_valid_config_validates(finops, tmp_path):
    result = finops("-c", write_config(tmp_path, GOOD), "config", "validate")
    assert result.exit_code == 0, result.stderr
    assert "OK (1 source)" in result.stderr


def test_missing_config_names_every_place_looked(finops, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = finops("report", "--by", "team")
    assert result.exit_code == 2
    assert "no finops config found" in result.stderr
    assert str(tmp_path / "finops.yaml") in result.stderr
    assert "config.yaml" in result.stderr and "user config" in result.stderr


def test_config_is_found_through_the_environment_and_the_current_folder(finops, tmp_path, monkeypatch):
    path = write_config(tmp_path, GOOD)
    monkeypatch.chdir(tmp_path)
    assert finops("config", "validate").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("FINOPS_CONFIG", str(path))
    assert finops("config", "validate").exit_code == 0
    monkeypatch.setenv("FINOPS_CONFIG", str(tmp_path / "nope.yaml"))
    result = finops("config", "validate")
    assert result.exit_code == 2 and "nope.yaml (from $FINOPS_CONFIG) does not exist" in result.stderr


def test_env_references_are_interpolated_and_masked(finops, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", "exports")
    monkeypatch.setenv("HOOK", "https://hooks.example.com/services/T000/B000/SECRETSECRET")
    config = write_config(tmp_path, """
store: ${STORE_FILE:-default.duckdb}
sources:
  - name: files
    type: focus
    path: ${DATA_DIR}/*.csv
""")
    result = finops("-c", config, "config", "show")
    assert result.exit_code == 0, result.stderr
    assert "store: '****'" in result.stdout or "store: ****" in result.stdout  # came from ${...}: masked
    assert "SECRET" not in result.stdout


def test_unset_env_reference_names_the_variable_and_key(finops, tmp_path):
    config = write_config(tmp_path, "store: ${FINOPS_TEST_UNSET_VAR}\n")
    result = finops("-c", config, "config", "validate")
    assert result.exit_code == 2
    assert "finops.yaml:1: store: environment variable FINOPS_TEST_UNSET_VAR is not set" in result.stderr


def test_secrets_in_keys_and_urls_are_masked(tmp_path):
    from finops_cli.config import mask, masked_text

    data = {"notifications": {"s": {"webhook_url": "https://x/y", "token_env": "MY_TOKEN"}},
            "url": "https://user:pa55@example.com/x"}
    shown = mask(data, (), set())
    assert shown["notifications"]["s"]["webhook_url"] == "****"
    assert shown["notifications"]["s"]["token_env"] == "MY_TOKEN"  # a variable's name is not a secret
    assert "pa55" not in shown["url"]
    assert "pa55" not in masked_text("could not reach https://user:pa55@example.com/x")
