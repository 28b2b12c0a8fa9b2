"""``parkflow exchanges`` and ``parkflow savings`` as an operator runs them: a water exchange
from a workshop idea to its first verified days, against a real SQLite database and store."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from parkflow.cli import EXIT_BAD_INPUT, EXIT_NOTHING, EXIT_OK, main
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.store import SqliteStore
from parkflow.timeunits import HOUR_MS
from service.exchanges.model import Benefit, Item, Metering, Method, Price
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.verify import day_ms_of
from service.rollups.compute import standard_offset_ms
from service.rollups.worker import RollupWorker
from service.state import Database, upgrade
from tests.support.registries import build, meter, park, tenant

PARK = park(
    "p1",
    tenant("wwtp", meter("reuse-line", "water.treated_effluent", "out", "m3", "cumulative")),
    tenant("det", meter("det-water", "water.potable", "in", "m3", "cumulative")),
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = tmp_path / "park.yaml"
    registry.write_text(yaml.safe_dump({"version": 1, "parks": [PARK]}))
    for name in ("PARKFLOW_INFLUX_URL", "PARKFLOW_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARKFLOW_REGISTRY", str(registry))
    monkeypatch.setenv("PARKFLOW_SQLITE_PATH", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv(
        "PARKFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'parkflow-operations.sqlite'}"
    )
    return tmp_path


def metered_two_days(path: Path) -> None:
    """2 days of 10 m3 an hour on the transfer meter, rolled up as the service does."""
    t0 = day_ms_of(dt.date(2026, 9, 1), standard_offset_ms("Asia/Ho_Chi_Minh"))
    register = [500.0 + 10 * h for h in range(49)]
    readings = [
        Reading("p1", "wwtp", "reuse-line", "water.treated_effluent", Direction.OUT, ts, v)
        for ts, v in zip(range(t0, t0 + 49 * HOUR_MS, HOUR_MS), register, strict=True)
    ]
    store = SqliteStore(path)
    try:
        store.write(WriteBatch(tuple(readings)))
        RollupWorker(store, build(PARK)).rebuild(t0, t0 + 2 * 86_400_000)
    finally:
        store.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_exchange_from_idea_to_verified_days(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "exchanges", "list")
    assert code == EXIT_BAD_INPUT and "parkflow db upgrade" in err
    assert run(capsys, "db", "upgrade")[0] == EXIT_OK
    assert run(capsys, "exchanges", "list")[0] == EXIT_NOTHING
    code, out, _ = run(
        capsys, "exchanges", "add", "reuse-1", "--park", "p1", "--owner", "ops-lan",
        "--barrier", "legal", "--notes", "2026-06 workshop",
    )  # fmt: skip
    assert code == EXIT_OK and "identified" in out
    code, _, err = run(capsys, "exchanges", "move", "reuse-1", "operating", "--by", "ops")
    assert code == EXIT_BAD_INPUT
    assert "cannot move from identified to operating" in err and "screened" in err
    code, _, err = run(capsys, "exchanges", "move", "reuse-1", "rejected", "--by", "ops")
    assert code == EXIT_BAD_INPUT and "needs a reason" in err
    assert run(
        capsys, "exchanges", "register", "reuse-1", "--supplier", "wwtp", "--receiver", "det",
        "--resource", "water.treated_effluent", "--unit", "m3", "--benefit", "water",
        "--from-meter", "reuse-line", "--to-meter", "det-water", "--meter", "reuse-line",
        "--method", "transfer_meter", "--start", "2026-09-01",
    )[0] == EXIT_OK  # fmt: skip
    for item, vnd, extra in (
        ("displaced", "17000", []),
        ("avoided_disposal", "9000", []),
        ("treatment", "2500", ["--paid-by", "supplier"]),
    ):
        code, _, err = run(
            capsys, "exchanges", "price", "reuse-1", "--item", item, "--effective",
            "2026-09-01", "--vnd-per-unit", vnd, "--by", "ops", *extra,
        )  # fmt: skip
        assert code == EXIT_OK, err
    code, _, err = run(
        capsys, "exchanges", "price", "reuse-1", "--item", "displaced", "--effective",
        "2026-08-15", "--vnd-per-unit", "1", "--by", "ops",
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT and "forward only" in err
    for stage in ("screened", "under_study"):
        assert run(capsys, "exchanges", "move", "reuse-1", stage, "--by", "ops-binh")[0] == 0
    code, _, err = run(capsys, "exchanges", "move", "reuse-1", "agreed", "--by", "ops")
    assert code == EXIT_BAD_INPUT and "with a projection" in err  # no opportunity behind it
    code, _, err = run(
        capsys, "exchanges", "add", "reuse-2", "--park", "p1", "--owner", "ops",
        "--opportunity", "p1:reuse-line>det-water:effluent_a_reuse",
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT and "latest detection run" in err

    metered_two_days(env / "store.sqlite")
    code, out, _ = run(capsys, "exchanges", "list", "--stage", "under_study")
    assert code == EXIT_OK and "reuse-1" in out
    code, out, _ = run(
        capsys, "savings", "--since", "2026-09-01", "--until", "2026-09-03", "--refresh"
    )
    # under study: nothing metered yet, so nothing verified
    assert code == EXIT_NOTHING and "recomputed 0 exchange-days" in out
    code, out, err = run(capsys, "exchanges", "show", "reuse-1")
    assert code == EXIT_OK and "identified -> screened by ops-binh" in out, err
    assert "2026-09-01 treatment 2500 VND/unit paid by supplier" in out


def test_savings_of_an_operating_exchange(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    url = f"sqlite:///{env / 'parkflow-operations.sqlite'}"
    db = Database(url)
    upgrade(db)
    repo = ExchangeRepository(db)
    repo.create("reuse-1", "p1", "ops", "ops", projection=Projection(480.0, 1, 1, 1))
    repo.register(
        "reuse-1",
        Registration(
            "wwtp", "det", "water.treated_effluent", "m3", Benefit.WATER, "reuse-line",
            "det-water", Metering(Method.TRANSFER_METER, "reuse-line"), dt.date(2026, 9, 1),
        ),
    )  # fmt: skip
    repo.add_price("reuse-1", Price(Item.DISPLACED, dt.date(2026, 9, 1), Decimal(17_000)), "ops")
    for stage in (Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING):
        repo.move("reuse-1", stage, "ops")
    db.close()
    metered_two_days(env / "store.sqlite")
    code, out, err = run(
        capsys, "savings", "--since", "2026-09-01", "--until", "2026-09-03", "--refresh", "--json"
    )
    assert code == EXIT_OK, err
    rows = json.loads(out[out.index("[") :])
    month, park_month, total = rows
    # 2 days x 240 m3 x 17,000 = 8,160,000, all the receiver's (no transfer price); 240 of 480
    # projected m3 a day: 50%
    assert (month["exchange"], month["park_vnd"], month["receiver_vnd"]) == (
        "reuse-1",
        8_160_000,
        8_160_000,
    )
    assert month["realised/projected"] == "50%" and month["water_m3"] == 480.0
    assert park_month["exchange"] == "park" and total["period"] == "total"
    assert total["park_vnd"] == 8_160_000
