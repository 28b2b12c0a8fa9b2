"""The committed provisioning JSON is what the code generates; the provisioning files name
the data source the dashboards use."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards import build

PROVISIONING = Path(build.__file__).parent / "provisioning"


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    assert build.stale() == [], "run `make dashboards` and commit the JSON"


def test_a_hand_edit_or_a_missing_file_is_noticed(tmp_path: Path) -> None:
    build.write(tmp_path)
    assert build.stale(tmp_path) == []
    edited = tmp_path / "flows.json"
    edited.write_text(edited.read_text().replace("flow_hour", "flow_hours"))
    (tmp_path / "savings.json").unlink()
    (tmp_path / "old.json").write_text("{}")
    assert build.stale(tmp_path) == ["flows.json", "old.json", "savings.json"]
    assert build.main(["--check"]) == 0


def test_provisioning_names_the_data_source_and_the_dashboards_folder() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "parkflow-influxdb.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    uids = {
        t["datasource"]["uid"]
        for f in build.OUT.glob("*.json")
        for p in json.loads(f.read_text())["panels"]
        for t in p.get("targets", [])
    }
    assert uids == {source["uid"]}
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "parkflow.yaml").read_text())
    (provider,) = providers["providers"]
    # the compose file mounts dashboards/provisioning at /etc/grafana/provisioning
    mounted = Path("/etc/grafana/provisioning") / build.OUT.relative_to(PROVISIONING)
    assert provider["options"]["path"] == str(mounted)
    titles = [json.loads(f.read_text())["title"] for f in sorted(build.OUT.glob("*.json"))]
    assert len(titles) == 4 and len(set(titles)) == 4
