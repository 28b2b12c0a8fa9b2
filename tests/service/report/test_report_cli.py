"""``parkflow report`` on a small registered park, against real SQL databases (SQLite,
PostgreSQL) and real stores (SQLite, InfluxDB): the report's figures equal a recomputation
done here, by hand, from the readings written to the store; participation is counted by
hand; the CSV carries both languages; the PDF is a real one from Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from parkflow.cli import EXIT_OK, main
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.store import Store
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.exchanges.model import Benefit, Factor, Item, Metering, Method, Price, Side
from service.exchanges.pipeline import Projection, Stage
from service.exchanges.repository import ExchangeRepository, Registration
from service.exchanges.verify import day_ms_of
from service.report.pdf import find_chromium
from service.rollups.compute import standard_offset_ms
from service.rollups.worker import RollupWorker
from service.state import Database
from tests.support.registries import build, meter, park, tenant

PARK = park(
    "p1",
    tenant("wwtp", meter("reuse-line", "water.treated_effluent", "out", "m3", "cumulative")),
    tenant("det", meter("det-water", "water.potable", "in", "m3", "cumulative")),
    tenant("nhiet", meter("ash-out", "waste.fly_ash", "out", "t", "cumulative")),
    tenant("gach", meter("gx-cement", "material.cement", "in", "t", "cumulative")),
    tenant("idle", meter("idle-water", "water.potable", "in", "m3", "cumulative")),
    name="Khu Cong Nghiep Mot",
)
REGISTRY = build(PARK)
OFFSET = standard_offset_ms("Asia/Ho_Chi_Minh")
OCT1 = dt.date(2026, 10, 1)
T0 = day_ms_of(OCT1, OFFSET)
HOURS = 3 * 24  # three metered days; the rest of October has no readings


def water_flow(k: int) -> Decimal:
    return Decimal(10) + Decimal(k % 7) / 2  # m3 in hour k (binary-exact halves)


def ash_flow(k: int) -> Decimal:
    return Decimal("0.5") + Decimal(k % 3) / 4  # t in hour k, of which half is exchanged


def readings() -> list[Reading]:
    out: list[Reading] = []
    water, ash = Decimal(1000), Decimal(50)
    for k in range(HOURS + 1):
        ts = T0 + k * HOUR_MS
        out.append(
            Reading(
                "p1",
                "wwtp",
                "reuse-line",
                "water.treated_effluent",
                Direction.OUT,
                ts,
                float(water),
            )
        )
        out.append(
            Reading("p1", "nhiet", "ash-out", "waste.fly_ash", Direction.OUT, ts, float(ash))
        )
        water += water_flow(k)
        ash += ash_flow(k)
    return out


def ms(day: dt.date) -> int:
    return day_ms_of(day, OFFSET)


def register_exchanges(repo: ExchangeRepository) -> None:
    sep = dt.date(2026, 9, 1)
    # reuse-1: treated effluent on its own transfer meter, the displaced price rising on 2 Oct
    repo.create(
        "reuse-1",
        "p1",
        "ops",
        "ops",
        projection=Projection(300.0, 2_000_000_000, 1_000_000_000, 1_000_000_000),
        now_ms=ms(sep),
    )
    repo.register(
        "reuse-1",
        Registration(
            "wwtp",
            "det",
            "water.treated_effluent",
            "m3",
            Benefit.WATER,
            "reuse-line",
            "det-water",
            Metering(Method.TRANSFER_METER, "reuse-line"),
            OCT1,
        ),
    )
    for price in (
        Price(Item.DISPLACED, OCT1, Decimal(17_000)),
        Price(Item.DISPLACED, OCT1 + dt.timedelta(1), Decimal(18_000)),
        Price(Item.AVOIDED_DISPOSAL, OCT1, Decimal(9_000)),
        Price(Item.TRANSFER, OCT1, Decimal(5_000)),
        Price(Item.TREATMENT, OCT1, Decimal(2_500), Side.SUPPLIER),
    ):
        repo.add_price("reuse-1", price, "ops")
    # ash-1: half of the plant's fly ash to the brick maker, trucked at the receiver's cost
    repo.create("ash-1", "p1", "ops", "ops", projection=Projection(5.0, 1, 1, 1), now_ms=ms(sep))
    repo.register(
        "ash-1",
        Registration(
            "nhiet",
            "gach",
            "waste.fly_ash",
            "t",
            Benefit.LANDFILL,
            "ash-out",
            "gx-cement",
            Metering(Method.SUPPLIER_SHARE, "ash-out", share=Decimal("0.5")),
            OCT1,
        ),
    )
    for price in (
        Price(Item.DISPLACED, OCT1, Decimal(900_000)),
        Price(Item.AVOIDED_DISPOSAL, OCT1, Decimal(250_000)),
        Price(Item.TRANSPORT, OCT1, Decimal(60_000), Side.RECEIVER),
    ):
        repo.add_price("ash-1", price, "ops")
    repo.add_factor("ash-1", Factor(2026, Decimal("0.718")))
    for xid in ("reuse-1", "ash-1"):
        for i, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED)):
            repo.move(xid, stage, "ops", now_ms=ms(sep) + (i + 1) * HOUR_MS)
        repo.move(xid, Stage.OPERATING, "ops", now_ms=ms(dt.date(2026, 9, 25)))
    # heat-1: only screened; idle would take part in it, but it does not run
    repo.create("heat-1", "p1", "ops", "ops", now_ms=ms(sep))
    repo.move("heat-1", Stage.SCREENED, "ops", now_ms=ms(sep) + HOUR_MS)
    # old-1: idle's exchange ran in August and ended in September, before the period
    repo.create(
        "old-1",
        "p1",
        "ops",
        "ops",
        projection=Projection(1.0, 1, 1, 1),
        now_ms=ms(dt.date(2026, 7, 1)),
    )
    repo.register(
        "old-1",
        Registration(
            "wwtp",
            "idle",
            "water.treated_effluent",
            "m3",
            Benefit.WATER,
            "reuse-line",
            "idle-water",
            Metering(Method.TRANSFER_METER, "reuse-line"),
            dt.date(2026, 8, 1),
            dt.date(2026, 9, 15),
        ),
    )
    for i, stage in enumerate((Stage.SCREENED, Stage.UNDER_STUDY, Stage.AGREED, Stage.OPERATING)):
        repo.move("old-1", stage, "ops", now_ms=ms(dt.date(2026, 7, 2)) + i * HOUR_MS)
    repo.move("old-1", Stage.ENDED, "ops", "line rerouted", now_ms=ms(dt.date(2026, 9, 16)))


def by_hand() -> dict[str, dict[str, Decimal]]:
    """Each exchange's month from the readings written above: hour k's quantity is the
    register's increase from k to k+1; each hour valued at that day's prices."""
    water = {"q": Decimal(0), "park": Decimal(0), "supplier": Decimal(0), "receiver": Decimal(0)}
    ash = {"q": Decimal(0), "park": Decimal(0), "supplier": Decimal(0), "receiver": Decimal(0)}
    for k in range(HOURS):
        displaced = Decimal(17_000) if k < 24 else Decimal(18_000)
        q = water_flow(k)
        water["q"] += q
        water["park"] += q * (displaced + 9_000 - 2_500)
        water["supplier"] += q * (9_000 + 5_000 - 2_500)
        water["receiver"] += q * (displaced - 5_000)
        a = ash_flow(k) / 2
        ash["q"] += a
        ash["park"] += a * (900_000 + 250_000 - 60_000)
        ash["supplier"] += a * 250_000
        ash["receiver"] += a * (900_000 - 60_000)
    return {"reuse-1": water, "ash-1": ash}


@pytest.fixture
def registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, env_store: Store
) -> str:
    registry = tmp_path / "park.yaml"
    registry.write_text(yaml.safe_dump({"version": 1, "parks": [PARK]}))
    monkeypatch.setenv("PARKFLOW_REGISTRY", str(registry))
    db = Database(db_url)
    try:
        register_exchanges(ExchangeRepository(db))
    finally:
        db.close()
    env_store.write(WriteBatch(tuple(readings())))
    RollupWorker(env_store, REGISTRY).rebuild(T0, T0 + 4 * DAY_MS)
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_report_equals_a_recomputation_from_the_readings(
    registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        "report",
        "--period",
        "2026-10",
        "--out",
        str(out),
        "--refresh",
        "--url",
        registered,
        "--lang",
        "vi",
    )
    assert code == EXIT_OK, err
    assert "recomputed" in stdout
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text(encoding="utf-8"))))

    def value(section: str, item: str, exchange: str = "", party: str = "") -> str:
        found = [
            r["value"]
            for r in rows
            if (r["section"], r["item"], r["exchange"], r["party"])
            == (section, item, exchange, party)
        ]
        assert len(found) == 1, (section, item, exchange, party)
        return found[0]

    hand = by_hand()
    w, a = hand["reuse-1"], hand["ash-1"]
    # the amounts are whole dong by construction, so no rounding hides a difference
    assert all(v == v.to_integral_value() for h in hand.values() for v in h.values() if v != h["q"])
    for xid, h in hand.items():
        assert float(value("exchanges", "quantity", xid)) == pytest.approx(float(h["q"]))
        assert int(value("exchanges", "park_vnd", xid)) == int(h["park"])
    reg = {"reuse-1": ("wwtp", "det"), "ash-1": ("nhiet", "gach")}
    for xid, (sup, rec) in reg.items():
        assert int(value("exchanges", "supplier_vnd", xid, sup)) == int(hand[xid]["supplier"])
        assert int(value("exchanges", "receiver_vnd", xid, rec)) == int(hand[xid]["receiver"])
    # three metered days of 31: coverage and gap days say so, nothing was filled
    assert float(value("exchanges", "coverage", "reuse-1")) == pytest.approx(72 / (31 * 24), 1e-3)
    assert int(value("exchanges", "gap_days", "reuse-1")) == 28
    # the park once: each exchange's park line, never the parties' gains added on top
    park_vnd = int(value("park", "park_vnd"))
    assert park_vnd == int(w["park"] + a["park"])
    parties = {r["party"]: int(r["value"]) for r in rows if r["section"] == "parties"}
    assert parties == {
        "wwtp": int(w["supplier"]),
        "det": int(w["receiver"]),
        "nhiet": int(a["supplier"]),
        "gach": int(a["receiver"]),
    }
    assert sum(parties.values()) == park_vnd
    assert float(value("park", "water_m3")) == pytest.approx(float(w["q"]))
    assert float(value("park", "landfill_t")) == pytest.approx(float(a["q"]))
    assert float(value("park", "co2e_t")) == pytest.approx(float(a["q"] * Decimal("0.718")))
    # realised against the frozen projection: 300 m3/day over the 31 verified days
    assert float(value("exchanges", "realised_share", "reuse-1")) == pytest.approx(
        float(w["q"]) / (300 * 31), abs=1e-4
    )
    # participation by hand: wwtp, det, nhiet, gach run an exchange in October; idle's only
    # exchange ended in September and its other one is merely screened: 4 of 5 tenants
    assert int(value("park", "operating_exchanges")) == 2
    assert int(value("park", "participating_tenants")) == 4
    assert float(value("park", "participation_share")) == 0.8
    stages = {r["item"]: int(r["value"]) for r in rows if r["section"] == "stages"}
    assert (stages["operating"], stages["screened"], stages["ended"]) == (2, 1, 1)
    assert sum(stages.values()) == 4
    # the criteria: figures where meters give one, said plainly where they do not
    assert value("criteria", "c05-a2-1a") == "2"
    assert value("criteria", "ief-env-symbiosis") == "0.8"
    assert int(value("criteria", "ief-economic")) == park_vnd
    assert value("criteria", "d35-a37-1a") == "not_measurable"
    crit = next(r for r in rows if r["item"] == "d35-a37-2-recp")
    assert crit["source"].startswith("unverified:")

    # every row is labelled in both languages
    for r in rows:
        assert r["label_en"].strip() and r["label_vi"].strip(), r
    part = next(r for r in rows if r["item"] == "participation_share")
    assert (part["label_en"], part["label_vi"]) == ("Participation", "Tỷ lệ tham gia")

    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in html and "Tỷ lệ tham gia" in html
    assert f"{park_vnd:,}".replace(",", ".") + " VND" in html  # Vietnamese grouping
    assert "không đo được từ đồng hồ" in html and "<svg" in html
    for fetched in ("<script", "<link", "src=", "@import"):
        assert fetched not in html  # self-contained: nothing loaded when printed

    assert find_chromium() is not None, "Chromium is missing: `make os-packages` installs it"
    assert "wrote" in stdout and "report.pdf" in stdout
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_without_chromium_the_csv_and_html_are_written_and_the_pdf_is_said_missing(
    registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        "report",
        "--period",
        "2026",
        "--out",
        str(out),
        "--url",
        registered,
        "--chromium",
        str(tmp_path / "no-such-chromium"),
    )
    assert code == EXIT_OK
    assert "report.pdf NOT made" in err
    assert (out / "report.csv").exists() and (out / "report.html").exists()
    assert not (out / "report.pdf").exists()
    html = (out / "report.html").read_text(encoding="utf-8")
    # no --refresh: nothing verified yet, and the report says so rather than showing zeros
    assert '<html lang="en">' in html and "No verified days in this period." in html


def test_a_year_recomputed_a_month_at_a_time_holds_the_same_days(
    registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "year"
    code, stdout, err = run(
        capsys, "report", "--period", "2026", "--out", str(out), "--refresh", "--url",
        registered, "--chromium", str(tmp_path / "none"),
    )  # fmt: skip
    assert code == EXIT_OK, err
    # in 31-day windows: both exchanges from 1 October to 31 December (2 x 92 days) and the
    # ended one's 46 days of August and September (no readings: zero, with their gaps)
    assert "recomputed 230 exchange-days, 230 changed" in stdout
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text(encoding="utf-8"))))
    park_vnd = next(r for r in rows if (r["section"], r["item"]) == ("park", "park_vnd"))
    hand = by_hand()
    assert int(park_vnd["value"]) == int(hand["reuse-1"]["park"] + hand["ash-1"]["park"])
    # over the year idle took part too: its exchange ran until September
    share = next(r for r in rows if r["item"] == "participation_share")
    assert float(share["value"]) == 1.0
