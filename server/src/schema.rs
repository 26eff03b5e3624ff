//! The SQLite schema and its versions: the first schema, then ordered migrations, each
//! bringing the file one version up. `PRAGMA user_version` records where a file stands, so a
//! database written by any older server opens without being wiped, and a new change of tables
//! is one more entry in [`MIGRATIONS`].

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::store::{Result, StoreError};

/// Version 0: the tables of the first server, which did not set `user_version`. A new file
/// gets these, then every migration, so a fresh database and a migrated one are the same.
const FIRST_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,              -- argon2id PHC string
    name          TEXT NOT NULL,
    roles         TEXT NOT NULL               -- JSON array of strings
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT PRIMARY KEY,             -- RFC 7638 thumbprint
    alg         TEXT NOT NULL,
    private_der BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,                      -- NULL: the key that signs new tokens
    last_exp    INTEGER NOT NULL DEFAULT 0    -- latest exp of a token it signed
);
CREATE TABLE IF NOT EXISTS families (
    id             TEXT PRIMARY KEY,          -- also the sid claim of its access tokens
    user_id        INTEGER NOT NULL REFERENCES users(id),
    successor_key  BLOB NOT NULL,             -- secret for deriving rotated tokens
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,          -- expiry of its newest refresh token
    access_exp_max INTEGER NOT NULL,          -- latest exp of an access token issued to it
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       BLOB PRIMARY KEY,              -- SHA-256 of the token; the token is never stored
    family_id  TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER                        -- NULL: the family's current token
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_expiry ON refresh_tokens(expires_at);
CREATE TABLE IF NOT EXISTS denied_jti (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL               -- the token's exp; the row is useless after it
) WITHOUT ROWID;
";

/// One step up: from version `to - 1` to `to`.
struct Migration {
    to: i64,
    /// Columns added, as `(table, column, definition)`. Each is checked in
    /// `PRAGMA table_info` first, so a file that already has one is left alone.
    columns: &'static [(&'static str, &'static str, &'static str)],
    /// Statements run after the columns. They must be idempotent (`IF NOT EXISTS`).
    sql: &'static str,
}

/// Every migration, in order; the last one's `to` is [`SCHEMA_VERSION`].
const MIGRATIONS: &[Migration] = &[
    // 0 → 1 (issue 12): the absolute session end and the cap on grace replays.
    Migration {
        to: 1,
        columns: &[
            // Login + max age; NULL in rows from before it existed: created_at + max age.
            ("families", "session_expires_at", "INTEGER"),
            // Times a rotated token was answered within the grace window.
            (
                "refresh_tokens",
                "grace_replays",
                "INTEGER NOT NULL DEFAULT 0",
            ),
        ],
        sql: "",
    },
    // 1 → 2 (issue 12): the login throttle's counters. Servers between the two changes of
    // issue 12 wrote version 1 with this table and others without it, hence `IF NOT EXISTS`.
    Migration {
        to: 2,
        columns: &[],
        sql: "
CREATE TABLE IF NOT EXISTS login_throttle (
    key          TEXT PRIMARY KEY,            -- kind, account and/or client address (throttle.rs)
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL             -- forgotten after this; cleanup deletes the row
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_throttle_expiry ON login_throttle(expires_at);
",
    },
    // 2 → 3 (issue 15): DPoP-bound families, the proof replay cache, the nonce secret.
    Migration {
        to: 3,
        columns: &[(
            "families",
            "dpop_bound",
            // 1 once a token of the family was bound to a key: refreshes need a proof.
            "INTEGER NOT NULL DEFAULT 0",
        )],
        sql: "
CREATE TABLE IF NOT EXISTS dpop_proofs (
    key        TEXT PRIMARY KEY,              -- hex SHA-256 of thumbprint and jti
    expires_at INTEGER NOT NULL               -- iat + window; a replay after it is stale anyway
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dpop_proofs_expiry ON dpop_proofs(expires_at);
CREATE TABLE IF NOT EXISTS dpop_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL                      -- HMAC key of the DPoP nonces
);
",
    },
    // 3 → 4 (issue 19): the upstream mode's provider tokens, and the key that seals them
    // when no key-encryption key is configured.
    Migration {
        to: 4,
        columns: &[],
        sql: "
CREATE TABLE IF NOT EXISTS upstream_tokens (
    family_id  TEXT PRIMARY KEY REFERENCES families(id) ON DELETE CASCADE,
    sealed     BLOB NOT NULL,               -- AES-256-GCM of the provider's tokens (upstream/tokens.rs)
    access_exp INTEGER NOT NULL,            -- expiry of the cached provider access token
    lock_owner TEXT,                        -- the request refreshing upstream now, if any
    lock_until INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upstream_secret (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    kek TEXT NOT NULL                       -- base64 of 32 random bytes; only without a configured KEK
);
",
    },
];

/// The version this server writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].to;

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction: a failure leaves the file
/// as it was. A file from a newer server is refused, not opened: this server does not know
/// what its tables mean.
pub(crate) fn upgrade(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Inconsistent(
            "the database was written by a newer server (its schema version is unknown here)",
        ));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if version == 0 {
        tx.execute_batch(FIRST_SCHEMA)?;
    }
    for migration in MIGRATIONS.iter().filter(|m| m.to > version) {
        for (table, column, definition) in migration.columns {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                    [table, column],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !exists {
                // Names come from the constants above, never from input.
                tx.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))?;
            }
        }
        tx.execute_batch(migration.sql)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(table, column, type, not null, default)`.
    type Column = (String, String, String, bool, Option<String>);

    /// Every column, and the index names.
    fn shape(conn: &Connection) -> (Vec<Column>, Vec<String>) {
        let mut columns = conn
            .prepare(
                "SELECT m.name, c.name, c.type, c.\"notnull\", c.dflt_value
                 FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' ORDER BY m.name, c.cid",
            )
            .unwrap();
        let columns = columns
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut indexes = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        let indexes = indexes
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (columns, indexes)
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    fn fresh() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        upgrade(&mut conn).unwrap();
        conn
    }

    /// A database as the server of `version` left it, with one session in it. Version 1
    /// comes in two shapes: without the throttle table (the first change of issue 12) and
    /// with it (the second, which created the table without a new version).
    fn written_by(version: i64, with_throttle_table: bool) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(FIRST_SCHEMA).unwrap();
        for migration in MIGRATIONS.iter().filter(|m| m.to <= version) {
            for (table, column, definition) in migration.columns {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))
                .unwrap();
            }
            conn.execute_batch(migration.sql).unwrap();
        }
        if with_throttle_table {
            conn.execute_batch(MIGRATIONS[1].sql).unwrap();
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = {version};
             INSERT INTO users (id, username, password_hash, name, roles)
                 VALUES (1, 'demo', 'x', 'Demo', '[\"user\"]');
             INSERT INTO families (id, user_id, successor_key, created_at, expires_at, access_exp_max)
                 VALUES ('sid-1', 1, x'00', 100, 200, 150);
             INSERT INTO refresh_tokens (hash, family_id, issued_at, expires_at)
                 VALUES (x'01', 'sid-1', 100, 200);"
        ))
        .unwrap();
        conn
    }

    #[test]
    fn a_database_of_every_older_version_is_brought_to_the_current_schema_with_its_rows() {
        let current = shape(&fresh());
        for (old, with_throttle_table) in [(0, false), (1, false), (1, true)] {
            let mut conn = written_by(old, with_throttle_table);
            upgrade(&mut conn).unwrap();
            assert_eq!(version(&conn), SCHEMA_VERSION, "from {old}");
            assert_eq!(shape(&conn), current, "from {old} ({with_throttle_table})");
            // The session written by the old server is still there, with the defaults
            // the new columns give old rows.
            let (sid, replays, end): (String, i64, Option<i64>) = conn
                .query_row(
                    "SELECT f.id, t.grace_replays, f.session_expires_at
                     FROM families f JOIN refresh_tokens t ON t.family_id = f.id",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!(
                (sid.as_str(), replays, end),
                ("sid-1", 0, None),
                "from {old}"
            );
            // Opening it again changes nothing.
            upgrade(&mut conn).unwrap();
            assert_eq!(shape(&conn), current);
        }
    }

    #[test]
    fn a_fresh_database_has_every_table_at_the_current_version() {
        let conn = fresh();
        assert_eq!(version(&conn), SCHEMA_VERSION);
        let (columns, indexes) = shape(&conn);
        for (table, column) in [
            ("families", "session_expires_at"),
            ("refresh_tokens", "grace_replays"),
            ("login_throttle", "failures"),
            ("denied_jti", "jti"),
        ] {
            assert!(
                columns.iter().any(|c| c.0 == table && c.1 == column),
                "{table}.{column}"
            );
        }
        assert!(indexes.iter().any(|i| i == "login_throttle_expiry"));
    }

    #[test]
    fn the_migrations_are_numbered_in_order_one_step_each() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.to, i as i64 + 1);
        }
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused_and_left_as_it_is() {
        let mut conn = fresh();
        conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .unwrap();
        let e = upgrade(&mut conn).unwrap_err();
        assert!(e.to_string().contains("newer server"), "{e}");
        assert_eq!(version(&conn), SCHEMA_VERSION + 1);
    }
}
