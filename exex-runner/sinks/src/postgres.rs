//! The PostgreSQL sink: a function's records as rows, equal at every moment
//! to the records of the canonical chain the runner has seen (up to its
//! confirmations depth).
//!
//! On open it creates, if absent, the records table (`table=`, default
//! `xxfunc_records`) and the cursor table `xxfunc_sink_cursors`:
//!
//! ```sql
//! CREATE TABLE xxfunc_records (
//!     function      text   NOT NULL,  -- the function (name, or blake3:HASH)
//!     seq           bigint NOT NULL,  -- the record's item seq in the runner's log
//!     block_number  bigint NOT NULL,
//!     block_hash    text   NOT NULL,  -- 0x + 64 hex
//!     function_hash text   NOT NULL,  -- the module: blake3:HASH
//!     record        jsonb  NOT NULL,  -- the record; a non-JSON one as {"record_b64": ".."}
//!     PRIMARY KEY (function, seq)
//! );
//! CREATE TABLE xxfunc_sink_cursors (
//!     sink text PRIMARY KEY, function text NOT NULL,
//!     outcome bigint NOT NULL, item bigint NOT NULL, updated_at timestamptz NOT NULL
//! );
//! ```
//!
//! A commit's batch inserts its records with one statement (`INSERT ...
//! SELECT ... FROM UNNEST($arrays)`: a 1,000-record block is one round
//! trip), a revert's batch deletes the rows of the reverted block (by
//! function and block hash, whatever retractions the function emitted), and
//! either runs **in the transaction that moves the sink's cursor**. The
//! cursor is read back on open and is the truth after any crash: a batch is
//! applied entirely with its cursor, or not at all. The primary key makes a
//! replayed insert a no-op (`ON CONFLICT DO NOTHING`).
//!
//! Errors: SQLSTATE classes 08 (connection), 40 (serialization, deadlock),
//! 53 (resources), 57 (operator intervention), 58 and XX (system), and
//! errors without a SQLSTATE (I/O, a closed connection) are transient;
//! anything else (a table altered so the rows no longer fit: 23 integrity,
//! 42 undefined column or type mismatch, 22 data) is permanent, so the sink
//! stops as `failed` with the server's message and skips nothing.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, error::SqlState};

use crate::{Batch, BoxFuture, BuildError, DeliveryError, Sink, SinkCursor, SinkSpec};
use xxfunc_api::outputs::ItemKind;

/// The cursor table every PostgreSQL sink shares (one row per sink).
pub const CURSOR_TABLE: &str = "xxfunc_sink_cursors";

/// The advisory lock key held while a sink creates its tables ("xxfunc" in ASCII).
const DDL_LOCK: i64 = 0x7878_6675_6e63;

/// Rows in PostgreSQL.
pub struct PostgresSink {
    name: String,
    function: String,
    table: String,
    described: String,
    pool: Pool,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("name", &self.name)
            .field("table", &self.table)
            .field("target", &self.described)
            .finish_non_exhaustive()
    }
}

impl PostgresSink {
    /// The sink `spec` describes (no connection is made before
    /// [`Sink::open`]).
    ///
    /// # Errors
    /// [`BuildError::Client`] when the URL is not a PostgreSQL connection URL.
    pub fn from_spec(spec: &SinkSpec) -> Result<Self, BuildError> {
        let config: tokio_postgres::Config =
            spec.target
                .as_str()
                .parse()
                .map_err(|e: tokio_postgres::Error| BuildError::Client {
                    sink: spec.name.clone(),
                    reason: format!("{}: {e}", spec.redacted()),
                })?;
        let mut config = config;
        if let Some(var) = &spec.password_env {
            let password = std::env::var(var).map_err(|_| BuildError::PasswordMissing {
                sink: spec.name.clone(),
                var: var.clone(),
            })?;
            config.password(password);
        }
        config.connect_timeout(spec.timeout);
        config.application_name("xxfunc-sink");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(2)
            .build()
            .map_err(|e| BuildError::Client {
                sink: spec.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            name: spec.name.clone(),
            function: spec.function.to_string(),
            table: spec.table.clone(),
            described: format!("{} table {}", spec.redacted(), spec.table),
            pool,
        })
    }

    fn err(&self, e: &tokio_postgres::Error) -> DeliveryError {
        let message = match e.as_db_error() {
            Some(db) => format!(
                "{}: {} (SQLSTATE {}){}",
                db.severity(),
                db.message(),
                db.code().code(),
                db.detail().map(|d| format!("; {d}")).unwrap_or_default()
            ),
            None => {
                let mut m = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    m.push_str(": ");
                    m.push_str(&s.to_string());
                    source = s.source();
                }
                m
            }
        };
        match e.code() {
            Some(code) if permanent(code) => DeliveryError::permanent(&self.described, message),
            _ => DeliveryError::transient(&self.described, message),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DeliveryError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => self.err(&e),
            other => DeliveryError::transient(&self.described, format!("connecting: {other}")),
        })
    }

    async fn prepare(&self) -> Result<Option<SinkCursor>, DeliveryError> {
        let client = self.client().await?;
        let t = &self.table;
        // One statement string is one transaction; the advisory lock held for it
        // serialises the creation among sinks opening at once (`CREATE TABLE IF NOT
        // EXISTS` alone races: two creators, one fails on the type's unique index).
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({DDL_LOCK});
                 CREATE TABLE IF NOT EXISTS \"{t}\" (
                     function text NOT NULL,
                     seq bigint NOT NULL,
                     block_number bigint NOT NULL,
                     block_hash text NOT NULL,
                     function_hash text NOT NULL,
                     record jsonb NOT NULL,
                     PRIMARY KEY (function, seq)
                 );
                 CREATE INDEX IF NOT EXISTS \"{t}_block\" ON \"{t}\" (function, block_hash);
                 CREATE TABLE IF NOT EXISTS {CURSOR_TABLE} (
                     sink text PRIMARY KEY,
                     function text NOT NULL,
                     outcome bigint NOT NULL,
                     item bigint NOT NULL,
                     updated_at timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await
            .map_err(|e| self.err(&e))?;
        let row = client
            .query_opt(
                &format!("SELECT outcome, item FROM {CURSOR_TABLE} WHERE sink = $1"),
                &[&self.name],
            )
            .await
            .map_err(|e| self.err(&e))?;
        // No row: the sink holds nothing yet (the default cursor), whatever
        // the runner remembers.
        Ok(Some(row.map_or(SinkCursor::default(), |r| SinkCursor {
            outcome: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            item: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
        })))
    }

    fn cursor_sql() -> String {
        format!(
            "INSERT INTO {CURSOR_TABLE} (sink, function, outcome, item, updated_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (sink) DO UPDATE
             SET function = EXCLUDED.function, outcome = EXCLUDED.outcome,
                 item = EXCLUDED.item, updated_at = EXCLUDED.updated_at"
        )
    }

    async fn apply(&self, batch: &Batch) -> Result<(), DeliveryError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(&e))?;
        let t = &self.table;
        let block_hash = batch.block.hash.to_string();
        match batch.kind {
            ItemKind::Insert => {
                let seqs: Vec<i64> = batch.records.iter().map(|r| r.seq as i64).collect();
                let records: Vec<String> = batch
                    .records
                    .iter()
                    .map(|r| match &r.record {
                        Some(raw) => raw.get().to_string(),
                        None => serde_json::json!({ "record_b64": r.record_b64 }).to_string(),
                    })
                    .collect();
                let insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO \"{t}\" (function, seq, block_number, block_hash, function_hash, record)
                         SELECT $1, u.seq, $2, $3, $4, u.record::jsonb
                         FROM UNNEST($5::bigint[], $6::text[]) AS u(seq, record)
                         ON CONFLICT (function, seq) DO NOTHING"
                    ))
                    .await
                    .map_err(|e| self.err(&e))?;
                tx.execute(
                    &insert,
                    &[
                        &self.function,
                        &(batch.block.number as i64),
                        &block_hash,
                        &batch.module.to_string(),
                        &seqs,
                        &records,
                    ],
                )
                .await
                .map_err(|e| self.err(&e))?;
            }
            ItemKind::Retract => {
                let delete = tx
                    .prepare_cached(&format!(
                        "DELETE FROM \"{t}\" WHERE function = $1 AND block_hash = $2"
                    ))
                    .await
                    .map_err(|e| self.err(&e))?;
                tx.execute(&delete, &[&self.function, &block_hash])
                    .await
                    .map_err(|e| self.err(&e))?;
            }
        }
        self.put_cursor(&tx, batch.cursor).await?;
        tx.commit().await.map_err(|e| self.err(&e))
    }

    async fn put_cursor(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        cursor: SinkCursor,
    ) -> Result<(), DeliveryError> {
        let stmt = tx
            .prepare_cached(&Self::cursor_sql())
            .await
            .map_err(|e| self.err(&e))?;
        tx.execute(
            &stmt,
            &[
                &self.name,
                &self.function,
                &(cursor.outcome as i64),
                &(cursor.item as i64),
            ],
        )
        .await
        .map_err(|e| self.err(&e))?;
        Ok(())
    }

    async fn store_cursor(&self, cursor: SinkCursor) -> Result<(), DeliveryError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(&e))?;
        self.put_cursor(&tx, cursor).await?;
        tx.commit().await.map_err(|e| self.err(&e))
    }
}

/// Whether an error with SQLSTATE `code` is a refusal that retrying cannot fix.
fn permanent(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    !matches!(class, "08" | "40" | "53" | "57" | "58" | "XX")
}

impl Sink for PostgresSink {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn open(&mut self) -> BoxFuture<'_, Result<Option<SinkCursor>, DeliveryError>> {
        Box::pin(self.prepare())
    }

    fn deliver<'a>(&'a mut self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.apply(batch))
    }

    fn checkpoint(&mut self, cursor: SinkCursor) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(self.store_cursor(cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        assert!(permanent(&SqlState::NOT_NULL_VIOLATION));
        assert!(permanent(&SqlState::DATATYPE_MISMATCH));
        assert!(permanent(&SqlState::UNDEFINED_COLUMN));
        assert!(permanent(&SqlState::INVALID_TEXT_REPRESENTATION));
        assert!(!permanent(&SqlState::CONNECTION_FAILURE));
        assert!(!permanent(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(!permanent(&SqlState::ADMIN_SHUTDOWN));
        assert!(!permanent(&SqlState::TOO_MANY_CONNECTIONS));
    }
}
