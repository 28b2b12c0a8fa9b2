"""The deployment files agree with the code: settings they set exist, commands they run exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ingest.settings import IngestSettings
from parkflow.cli import build_parser
from service.settings import ServiceSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KNOWN = {f"PARKFLOW_{name.upper()}" for name in IngestSettings.model_fields} | {
    f"PARKFLOW_{name.upper()}" for name in ServiceSettings.model_fields
}
OPERATOR_FILES = {
    "parkflow.passwd",
    "parkflow.acl",
    "park.yaml",
    "parkflow.env",
    "ingest-1.env",
    "ingest-2.env",
}
COMMANDS = set(build_parser()._subparsers._group_actions[0].choices or ())  # type: ignore[union-attr]


def _env_names(text: str) -> set[str]:
    # the test suite's own switches, not settings of a process
    return set(re.findall(r"\bPARKFLOW_[A-Z0-9_]+", text)) - {
        "PARKFLOW_FAILPOINTS",
        "PARKFLOW_SCREENSHOTS",
    }


def test_every_parkflow_variable_in_deploy_is_a_setting() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            unknown = _env_names(path.read_text()) - KNOWN
            assert not unknown, f"{path.name} sets unknown settings {sorted(unknown)}"


def test_compose_mounts_exist_and_commands_are_real() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                rel = DEPLOY / source
                assert rel.exists() or rel.name in OPERATOR_FILES, f"{name}: {source} missing"
        if "command" in svc:
            assert svc["command"][0] in COMMANDS, f"{name}: unknown command {svc['command']}"
    ingest = {n: s for n, s in compose["services"].items() if n.startswith("ingest")}
    users = [s["environment"]["PARKFLOW_MQTT_USERNAME"] for s in ingest.values()]
    assert len(users) == len(set(users)) >= 2  # each ingestor its own user, so its own session
    for name, svc in ingest.items():
        for env_file in svc["env_file"]:
            assert (DEPLOY / env_file).exists() or env_file in OPERATOR_FILES, name
    example = (DEPLOY / "ingest-1.env.example").read_text()
    assert "PARKFLOW_PARTITION=1/2" in example


def test_systemd_units_run_real_commands() -> None:
    for unit in (DEPLOY / "systemd").glob("*.service"):
        exec_start = re.search(r"^ExecStart=(.*)$", unit.read_text(), re.M)
        assert exec_start, unit.name
        assert exec_start.group(1).split()[1] in COMMANDS, unit.name
        assert "Restart=always" in unit.read_text(), unit.name


def test_broker_config_keeps_data() -> None:
    conf = dict(
        line.split(None, 1)
        for line in (DEPLOY / "mosquitto" / "parkflow.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["persistence"] == "true"
    assert conf["max_queued_messages"] == "0"  # Mosquitto's default 1000 drops silently
    assert conf["allow_anonymous"] == "false"
    assert "acl_file" in conf
    assert conf["use_username_as_clientid"] == "true"  # no gateway can take a session


DOCS = [DEPLOY.parent / "README.md", *sorted((DEPLOY.parent / "docs").glob("*.md"))]


def test_every_parkflow_variable_in_the_docs_is_a_setting() -> None:
    for path in DOCS:
        unknown = _env_names(path.read_text()) - KNOWN
        assert not unknown, f"{path.name} names unknown settings {sorted(unknown)}"


def _doc_commands(text: str) -> list[list[str]]:
    """The ``parkflow ...`` command lines of a document's shell blocks, as argument lists."""
    out: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split("#", 1)[0].split("|", 1)[0].split()
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]  # VAR=value before the command
            if words[:1] == ["parkflow"]:
                out.append(words[1:])
    return out


def test_the_commands_the_recipe_runs_are_real() -> None:
    commands = _doc_commands((DEPLOY.parent / "docs" / "operations.md").read_text())
    ran = {c[0] for c in commands}
    # the stack by hand: a registry, ingestors, a publisher, the two views, detection
    assert {"simulate", "registry", "ingest", "meters", "quarantine", "detect"} <= ran
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # an unknown command or option exits 2 and fails the test


def test_grafana_is_provisioned_read_only_from_the_dashboards() -> None:
    grafana = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana-oss:")
    mounts = {v.split(":")[1]: v.split(":") for v in grafana["volumes"]}
    source, _, mode = mounts["/etc/grafana/provisioning"]
    assert (
        mode == "ro"
        and (DEPLOY / source).resolve() == DEPLOY.parent / "dashboards" / "provisioning"
    )
    provisioning = DEPLOY.parent / "dashboards" / "provisioning"
    assert (provisioning / "datasources").is_dir() and (provisioning / "dashboards").is_dir()
    # every variable the data source file reads is set by compose or the env example
    datasource = (provisioning / "datasources" / "parkflow-influxdb.yaml").read_text()
    active = "\n".join(
        line for line in datasource.splitlines() if not line.lstrip().startswith("#")
    )
    needed = set(re.findall(r"\$\{(\w+)\}", active))
    assert needed and needed <= set(grafana["environment"])
    example = (DEPLOY / "grafana.env.example").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", datasource)) - needed <= set(
        re.findall(r"(\w+)=", example)
    )
