"""The SQLite store's schema and its migrations (docs/schema.md has the tables)."""

from __future__ import annotations

import sqlite3

from parkflow.errors import StoreError

# MIGRATIONS[n] takes a database from schema version n to n + 1 (PRAGMA user_version).
# Never edit a released step: append a new one and it runs on next open.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE readings (
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            resource TEXT NOT NULL,
            direction TEXT NOT NULL,
            value REAL NOT NULL,
            seq INTEGER,
            PRIMARY KEY (park, tenant, meter, ts_ms)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            received_ms INTEGER NOT NULL,
            idx INTEGER,
            park TEXT,
            tenant TEXT,
            meter TEXT
        )
        """,
        "CREATE INDEX quarantine_reason_received ON quarantine (reason, received_ms)",
        "CREATE INDEX quarantine_received ON quarantine (received_ms)",
    ),
    (
        # Change markers: one row per meter and UTC hour, stamped by the latest write into it.
        """
        CREATE TABLE changes (
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            hour_ms INTEGER NOT NULL,
            written_ms INTEGER NOT NULL,
            PRIMARY KEY (park, tenant, meter, hour_ms)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX changes_written ON changes (written_ms)",
        # Readings stored before this version get markers too, so the first worker run rolls
        # them up. (floor division: SQLite's % keeps the sign of negative timestamps)
        """
        INSERT INTO changes (park, tenant, meter, hour_ms, written_ms)
        SELECT park, tenant, meter, ts_ms - ((ts_ms % 3600000) + 3600000) % 3600000, 0
        FROM readings GROUP BY 1, 2, 3, 4
        """,
        # Day first in the key: detection reads every meter over a window of days.
        """
        CREATE TABLE rollups (
            day_ms INTEGER NOT NULL,
            park TEXT NOT NULL,
            tenant TEXT NOT NULL,
            meter TEXT NOT NULL,
            resource TEXT NOT NULL,
            direction TEXT NOT NULL,
            total REAL NOT NULL,
            coverage REAL NOT NULL,
            hours BLOB NOT NULL,
            PRIMARY KEY (day_ms, park, tenant, meter)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE state (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    (
        # The raw message is kept once (capped) in a table of its own; rejections point to it
        # and are identified by (message_id, slot), slot -1 for the whole message, so writing
        # the same rejection twice (a redelivery, a retry) keeps one.
        """
        CREATE TABLE quarantine_message (
            message_id TEXT PRIMARY KEY,
            topic TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            payload BLOB NOT NULL,
            size INTEGER NOT NULL,
            park TEXT,
            tenant TEXT,
            meter TEXT
        ) WITHOUT ROWID
        """,
        """
        INSERT INTO quarantine_message
        SELECT 'legacy-' || id, topic, received_ms, substr(payload, 1, 16384), length(payload),
               park, tenant, meter
        FROM quarantine
        """,
        """
        CREATE TABLE quarantine_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            slot INTEGER NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            topic TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            idx INTEGER,
            park TEXT,
            tenant TEXT,
            meter TEXT,
            UNIQUE (message_id, slot)
        )
        """,
        """
        INSERT INTO quarantine_v3 (id, message_id, slot, reason, detail, topic, received_ms,
                                   idx, park, tenant, meter)
        SELECT id, 'legacy-' || id, coalesce(idx, -1), reason, detail, topic, received_ms, idx,
               park, tenant, meter
        FROM quarantine
        """,
        "DROP TABLE quarantine",
        "ALTER TABLE quarantine_v3 RENAME TO quarantine",
        "CREATE INDEX quarantine_reason_received ON quarantine (reason, received_ms)",
        "CREATE INDEX quarantine_received ON quarantine (received_ms)",
    ),
    (
        # The table was named after its first user; it holds ingestors' checkpoints too.
        "ALTER TABLE state RENAME TO checkpoints",
    ),
    (
        # Exchanges' realised savings per local day (the operational database has the rest).
        """
        CREATE TABLE savings (
            park TEXT NOT NULL,
            exchange TEXT NOT NULL,
            day_ms INTEGER NOT NULL,
            quantity REAL NOT NULL,
            coverage REAL NOT NULL,
            supplier_vnd INTEGER NOT NULL,
            receiver_vnd INTEGER NOT NULL,
            park_vnd INTEGER NOT NULL,
            water_m3 REAL NOT NULL,
            co2e_t REAL NOT NULL,
            landfill_t REAL NOT NULL,
            disagrees INTEGER NOT NULL,
            PRIMARY KEY (park, exchange, day_ms)
        ) WITHOUT ROWID
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to ``SCHEMA_VERSION``; each step commits together with its version."""
    while True:
        conn.execute("BEGIN IMMEDIATE")  # re-read the version under the write lock
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this code's "
                    f"{SCHEMA_VERSION}; refusing to touch it"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
