"""Writes the dashboards as Grafana provisioning JSON (``make dashboards``).

``python -m dashboards.build`` rewrites ``dashboards/provisioning/dashboards/parkflow/``;
``--check`` only says whether the committed files are what the code generates (the test
suite asks the same), so a hand edit of the JSON cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.boards import BOARDS

OUT = Path(__file__).parent / "provisioning" / "dashboards" / "parkflow"


def generate() -> dict[str, str]:
    """File name -> JSON text, stable (sorted keys) so that a diff shows what changed."""
    out = {}
    for name, make in BOARDS.items():
        model = json.loads(json.dumps(make().build(), cls=JSONEncoder))
        out[f"{name}.json"] = json.dumps(_without_nulls(model), indent=2, sort_keys=True) + "\n"
    return out


def _without_nulls(value: object) -> object:
    """The SDK writes unset members as ``null`` (a panel's ``options``); Grafana fills in its
    defaults only for members that are absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def stale(out: Path = OUT) -> list[str]:
    """The files under ``out`` that differ from the generated ones, or are missing or extra."""
    want = generate()
    have = {p.name: p.read_text() for p in out.glob("*.json")} if out.is_dir() else {}
    return sorted(n for n in want.keys() | have.keys() if want.get(n) != have.get(n))


def write(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    want = generate()
    for old in out.glob("*.json"):
        if old.name not in want:
            old.unlink()
    for name, content in want.items():
        (out / name).write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        for name in differ:
            print(f"{name} differs from the generated dashboard: run `make dashboards`")
        return 1 if differ else 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
