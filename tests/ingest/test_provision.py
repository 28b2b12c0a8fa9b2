"""``parkflow tenants provision|revoke`` against a real Mosquitto running the shipped
configuration with the files the command wrote: the printed password logs the gateway in and
publishes its own meters' readings only; a revoked tenant is refused after the broker reloads,
and its API key no longer authenticates."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt import passwords
from parkflow.cli import EXIT_BAD_INPUT, main
from parkflow.registry import SAMPLE_REGISTRY
from service.api.context import pepper_of
from service.auth import KeyRepository
from service.settings import ServiceSettings
from service.state import Database, upgrade
from tests.support.mosquitto import MosquittoServer


def _connect(port: int, user: str, password: str) -> tuple[mqtt.Client, list[object]]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    codes: list[object] = []
    c.on_connect = lambda cl, u, f, rc, p: codes.append(rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        time.sleep(0.05)
    return c, codes


def _provision(
    tmp: Path, tenant: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, str]:
    args = ["tenants", "provision", tenant, "--registry", str(SAMPLE_REGISTRY)]
    args += ["--passwd", str(tmp / "passwd"), "--acl", str(tmp / "acl")]
    args += ["--url", f"sqlite:///{tmp / 'ops.sqlite'}", *extra]
    assert main(args) == 0
    out = capsys.readouterr().out
    found = dict(re.findall(r"(broker user|broker password|API key \(\S+\)):\s+(\S+)", out))
    key = next((v for k, v in found.items() if k.startswith("API key")), "")
    return {"user": found["broker user"], "password": found["broker password"], "key": key}


def test_provisioned_gateway_publishes_its_own_topics_until_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARKFLOW_API_KEY_PEPPER_FILE", str(tmp_path / "pepper"))
    db = Database(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(db)
    a = _provision(tmp_path, "thep-an", capsys)
    b = _provision(tmp_path, "det-phuoc", capsys)
    assert a["user"] == "songlam.thep-an" and a["password"] != b["password"]
    assert (tmp_path / "passwd").stat().st_mode & 0o077 == 0
    assert a["password"] not in (tmp_path / "passwd").read_text()  # hashed, never stored
    assert passwords.verify(a["password"], passwords.read(tmp_path / "passwd")[a["user"]])
    # provisioning twice is refused; --rotate gives a new password, and the old one stops
    again = ["tenants", "provision", "thep-an", "--registry", str(SAMPLE_REGISTRY)]
    again += ["--passwd", str(tmp_path / "passwd"), "--acl", str(tmp_path / "acl")]
    again += ["--url", f"sqlite:///{tmp_path / 'ops.sqlite'}"]
    assert main(again) == EXIT_BAD_INPUT
    assert "provisioned already" in capsys.readouterr().err
    old = a
    a = {**_provision(tmp_path, "thep-an", capsys, "--rotate"), "key": old["key"]}
    assert a["password"] != old["password"]
    assert not passwords.verify(old["password"], passwords.read(tmp_path / "passwd")[a["user"]])

    server = MosquittoServer(
        password_file=tmp_path / "passwd", acl=(tmp_path / "acl").read_text(), deploy=True
    )
    server.start()
    try:
        gw, codes = _connect(server.port, a["user"], a["password"])
        assert codes and not codes[0].is_failure  # type: ignore[attr-defined]
        acks: dict[int, int] = {}
        gw.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
        own = gw.publish("ip/songlam/thep-an/thep-water/readings", b"{}", qos=1)
        other = gw.publish("ip/songlam/det-phuoc/det-water/readings", b"{}", qos=1)
        own.wait_for_publish(5)
        other.wait_for_publish(5)
        assert acks[own.mid] < 128 and acks[other.mid] == 135  # not authorized
        gw.loop_stop()
        gw.disconnect()
        _, wrong = _connect(server.port, a["user"], b["password"])
        assert wrong and wrong[0].is_failure  # type: ignore[attr-defined]

        # an operator's files, as docs/operations.md sets them up: modes are kept
        for f in ("passwd", "acl"):
            os.chmod(tmp_path / f, 0o640)
        settings = ServiceSettings(api_key_pepper_file=tmp_path / "pepper")
        keys = KeyRepository(db, pepper_of(settings))
        assert keys.authenticate(a["key"]) is not None
        assert main(["tenants", "revoke", "thep-an", "--registry", str(SAMPLE_REGISTRY),
                     "--passwd", str(tmp_path / "passwd"), "--acl", str(tmp_path / "acl"),
                     "--url", f"sqlite:///{tmp_path / 'ops.sqlite'}"]) == 0  # fmt: skip
        assert "1 API key(s) revoked" in capsys.readouterr().out
        for f in ("passwd", "acl"):
            assert (tmp_path / f).stat().st_mode & 0o777 == 0o640, f
        assert keys.authenticate(a["key"]) is None
        assert keys.authenticate(b["key"]) is not None
        server.install_password_file(tmp_path / "passwd")
        server.reload()
        _, refused = _connect(server.port, a["user"], a["password"])
        assert refused and refused[0].is_failure  # type: ignore[attr-defined]
        still, ok = _connect(server.port, b["user"], b["password"])
        assert ok and not ok[0].is_failure  # type: ignore[attr-defined]
        still.loop_stop()
        still.disconnect()
    finally:
        server.close()
        db.close()


@pytest.mark.parametrize("bad", ["a+b", "a#", "a/b", "a:b", "a b", "a\nb", "a\x00b", ""])
def test_user_names_that_could_break_the_broker_files_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="broker user"):
        passwords.check_user(bad)


@pytest.mark.parametrize("bad", ["a:b", "a\nb", "a\rb", ""])
def test_a_password_file_line_is_never_broken(bad: str) -> None:
    with pytest.raises(ValueError):
        passwords.write(Path("/nonexistent/never-written"), {bad: "x"})


def test_users_parkflow_did_not_make_are_kept(tmp_path: Path) -> None:
    f = tmp_path / "passwd"
    f.write_text("ops@park.example:$7$101$abc$def\n")
    users = passwords.read(f)
    users["songlam.thep-an"] = passwords.hash_password("pw")
    passwords.write(f, users)
    assert set(passwords.read(f)) == {"ops@park.example", "songlam.thep-an"}


def test_a_tenant_not_in_the_registry_is_refused(tmp_path: Path) -> None:
    args = ["tenants", "provision", "no-such-tenant", "--registry", str(SAMPLE_REGISTRY)]
    args += ["--passwd", str(tmp_path / "p"), "--acl", str(tmp_path / "a")]
    args += ["--url", f"sqlite:///{tmp_path / 'ops.sqlite'}"]
    assert main(args) == EXIT_BAD_INPUT
    assert not (tmp_path / "p").exists()


def test_an_administrators_comments_and_order_survive_a_rewrite(tmp_path: Path) -> None:
    f = tmp_path / "passwd"
    f.write_text(
        "# park operators: ask ops@park.example\n"
        "ops@park.example:$7$101$abc$def\n"
        "\n"
        "# tenants\n"
        "songlam.thep-an:$7$101$old$old\n"
        "songlam.det-phuoc:$7$101$x$y\n"
    )
    users = passwords.read(f)
    users["songlam.thep-an"] = new = passwords.hash_password("rotated")
    del users["songlam.det-phuoc"]
    users["songlam.gach-xanh"] = added = passwords.hash_password("pw")
    passwords.write(f, users)
    assert f.read_text() == (
        "# park operators: ask ops@park.example\n"
        "ops@park.example:$7$101$abc$def\n"
        "\n"
        "# tenants\n"
        f"songlam.thep-an:{new}\n"
        f"songlam.gach-xanh:{added}\n"
    )
    assert passwords.verify("rotated", passwords.read(f)["songlam.thep-an"])
