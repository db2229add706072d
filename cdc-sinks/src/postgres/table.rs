//! Target tables: building them from the source schema, preparing them per
//! prepare mode and evolving them on schema changes.

use std::collections::HashMap;

use cdc_core::event::{TableName, TableSchema};
use tokio_postgres::Transaction;

use super::config::PostgresConfig;
use super::mapping::{PgType, column_type};
use crate::ddl::{BookkeepingTypes, column_definitions};
use crate::error::{Result, SinkError};
use crate::evolution::{Alter, TablePlan, table_plan};
use crate::mapping::TargetTable;
use crate::mode::SCHEMAS_TABLE;
use crate::quote::Dialect;

const D: Dialect = Dialect::Postgres;
const BOOKKEEPING: BookkeepingTypes = BookkeepingTypes {
    op: "text NOT NULL",
    commit_time: "timestamptz NOT NULL",
    offset: "bigint PRIMARY KEY",
    unchanged: "text",
    soft_deleted: "boolean NOT NULL DEFAULT false",
};

/// A target table with its column types and per-session write state.
#[derive(Debug)]
pub(super) struct PgTable {
    /// The source schema the table was built from.
    pub(super) source: TableSchema,
    pub(super) target: TargetTable,
    /// Column DDL types, in target column order.
    pub(super) ddl: Vec<String>,
    /// Column COPY types, in target column order.
    pub(super) types: Vec<PgType>,
    /// The quoted, schema-qualified target name.
    pub(super) qualified: String,
    /// The quoted name of this table version's staging table (`pg_temp`).
    pub(super) stage: String,
    /// Whether the staging table exists in this session.
    pub(super) stage_created: bool,
    /// When to try copying new keys straight into the target.
    pub(super) direct: DirectCopy,
}

impl PgTable {
    fn new(
        config: &PostgresConfig,
        source: TableSchema,
        target: TargetTable,
        stage_id: u64,
    ) -> Result<Self> {
        let mut ddl = Vec::new();
        let mut types = Vec::new();
        for c in &target.columns {
            let (d, t) = column_type(&target, c)?;
            ddl.push(d);
            types.push(t);
        }
        let qualified = D.qualified(&config.schema, &target.name);
        Ok(Self {
            source,
            target,
            ddl,
            types,
            qualified,
            stage: format!("pg_temp.{}", D.ident(&format!("_cdc_stage_{stage_id}"))),
            stage_created: false,
            direct: DirectCopy::default(),
        })
    }
}

/// Whether to copy a batch's new keys straight into the target.
///
/// Copying is much cheaper than staging and merging, and safe: it runs under a
/// savepoint, and if a key already exists the savepoint is rolled back and
/// the rows are merged instead. When that happens the table skips the direct
/// path for a while (doubling up to [`DirectCopy::MAX_SKIP`] batches), so a
/// stream that keeps re-inserting existing keys pays for it rarely.
#[derive(Debug, Clone, Default)]
pub(super) struct DirectCopy {
    skip: u32,
    penalty: u32,
}

impl DirectCopy {
    const MAX_SKIP: u32 = 64;

    /// Whether to try the direct path for this batch.
    pub(super) fn try_now(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// The direct copy went through.
    pub(super) fn succeeded(&mut self) {
        self.penalty = 0;
    }

    /// The direct copy hit an existing key.
    pub(super) fn conflicted(&mut self) {
        self.penalty = (self.penalty * 2).clamp(1, Self::MAX_SKIP);
        self.skip = self.penalty;
    }
}

/// Tables this sink built in this session, by source table.
#[derive(Debug, Default)]
pub(super) struct Tables {
    by_source: HashMap<TableName, PgTable>,
    /// Staging table numbers are never reused in a session, so a table version
    /// never finds another version's staging table.
    stages: u64,
}

impl Tables {
    fn next_stage(&mut self) -> u64 {
        self.stages += 1;
        self.stages
    }

    fn get(&self, table: &TableName) -> Option<&PgTable> {
        self.by_source.get(table)
    }

    /// The table built for `table`'s changes.
    pub(super) fn built(&mut self, table: &TableName) -> Result<&mut PgTable> {
        self.by_source
            .get_mut(table)
            .ok_or_else(|| SinkError::CorruptState {
                location: "postgresql sink".into(),
                reason: format!("changes of {table} arrived before its schema"),
            })
    }

    /// Forgets every table (after a rolled-back batch, whose DDL is undone).
    pub(super) fn clear(&mut self) {
        self.by_source.clear();
    }
}

/// Creates, prepares or evolves the target table for a schema step.
pub(super) async fn prepare_table(
    tx: &Transaction<'_>,
    tables: &mut Tables,
    config: &PostgresConfig,
    schema: &TableSchema,
) -> Result<()> {
    // Every batch starts with the schema of each table it touches; when this
    // sink built the table from the same schema there is nothing to do.
    if tables
        .get(&schema.table)
        .is_some_and(|t| t.source == *schema)
    {
        return Ok(());
    }
    let Some(target) = config.mapping.resolve(schema)? else {
        return Ok(());
    };
    let new = PgTable::new(config, schema.clone(), target, tables.next_stage())?;
    let stored = match tables.get(&schema.table) {
        Some(t) => Some(t.target.clone()),
        None => load_stored(tx, config, &schema.table).await?,
    };
    let name = &new.qualified;
    let mut ddl = Vec::new();
    match table_plan(stored.as_ref(), &new.target, config.mapping.dropped_columns)? {
        TablePlan::Create {
            drop_first,
            truncate,
        } => {
            if drop_first {
                ddl.push(format!("DROP TABLE IF EXISTS {name}"));
            }
            ddl.push(create_table(&new));
            if truncate {
                ddl.push(format!("TRUNCATE {name}"));
            }
        }
        TablePlan::Alter(alters) => {
            for alter in alters {
                let col_ddl = |c: &crate::mapping::TargetColumn| {
                    let i = new.target.columns.iter().position(|x| x.name == c.name);
                    i.map(|i| new.ddl[i].clone()).unwrap_or_default()
                };
                match alter {
                    Alter::Add(c) => ddl.push(format!(
                        "ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {} {}",
                        D.ident(&c.name),
                        col_ddl(c)
                    )),
                    Alter::Drop(c) => ddl.push(format!(
                        "ALTER TABLE {name} DROP COLUMN IF EXISTS {}",
                        D.ident(&c.name)
                    )),
                    Alter::Widen(c) => ddl.push(format!(
                        "ALTER TABLE {name} ALTER COLUMN {} TYPE {}",
                        D.ident(&c.name),
                        col_ddl(c)
                    )),
                }
            }
        }
    }
    for sql in ddl {
        tx.batch_execute(&sql)
            .await
            .map_err(SinkError::pg("changing a target table"))?;
    }
    let json = serde_json::to_string(schema).map_err(|e| SinkError::CorruptState {
        location: SCHEMAS_TABLE.into(),
        reason: e.to_string(),
    })?;
    tx.execute(
        &format!(
            "INSERT INTO {} (sink_name, source_schema, source_table, schema_json)
             VALUES ($1, $2, $3, $4) ON CONFLICT (sink_name, source_schema, source_table)
             DO UPDATE SET schema_json = EXCLUDED.schema_json",
            D.qualified(&config.schema, SCHEMAS_TABLE)
        ),
        &[
            &config.sink_name,
            &schema.table.schema.as_str(),
            &schema.table.name.as_str(),
            &json,
        ],
    )
    .await
    .map_err(SinkError::pg("recording a table schema"))?;
    tables.by_source.insert(schema.table.clone(), new);
    Ok(())
}

/// The source schema this sink last built the table from, from `_cdc_schemas`.
async fn load_stored(
    tx: &Transaction<'_>,
    config: &PostgresConfig,
    table: &TableName,
) -> Result<Option<TargetTable>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT schema_json FROM {} WHERE sink_name = $1 AND source_schema = $2
                 AND source_table = $3",
                D.qualified(&config.schema, SCHEMAS_TABLE)
            ),
            &[
                &config.sink_name,
                &table.schema.as_str(),
                &table.name.as_str(),
            ],
        )
        .await
        .map_err(SinkError::pg("reading a recorded schema"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let json: String = row.get(0);
    let schema: TableSchema = serde_json::from_str(&json).map_err(|e| SinkError::CorruptState {
        location: format!("{SCHEMAS_TABLE} row of {table}"),
        reason: e.to_string(),
    })?;
    config.mapping.resolve(&schema)
}

/// `CREATE TABLE IF NOT EXISTS` for a target table in its write mode.
fn create_table(table: &PgTable) -> String {
    let defs = column_definitions(D, &table.target, &BOOKKEEPING, |i| &table.ddl[i]);
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table.qualified,
        defs.join(", ")
    )
}
