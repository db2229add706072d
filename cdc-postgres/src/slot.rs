//! Preconditions, publications and replication slots, checked through an
//! ordinary connection so every failure names its fix.

use std::time::Duration;

use cdc_core::event::TableName;
use tokio_postgres::Client;
use tracing::info;

use crate::config::PostgresConfig;
use crate::error::{Error, Result};
use crate::replication::parse_lsn;

/// Quotes an identifier for SQL.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a qualified table name for SQL.
pub(crate) fn quote_table(table: &TableName) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    )
}

/// Checks `wal_level`, the user's REPLICATION privilege, the tables' keys and
/// the publication, creating the publication when configured to.
pub(crate) async fn check_prerequisites(client: &Client, config: &PostgresConfig) -> Result<()> {
    let wal_level: String = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(Error::query("reading wal_level"))?
        .get(0);
    if wal_level != "logical" {
        return Err(Error::WalLevel { actual: wal_level });
    }
    let row = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(Error::query("reading the user's privileges"))?;
    if !row.get::<_, bool>(0) {
        return Err(Error::MissingReplicationPrivilege {
            user: config.user.clone(),
        });
    }
    for table in &config.tables {
        let row = client
            .query_opt(
                "SELECT c.relreplident::text, \
                        EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                                WHERE i.indrelid = c.oid AND i.indisprimary) \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema.as_str(), &table.name.as_str()],
            )
            .await
            .map_err(Error::query("reading table replica identity"))?
            .ok_or_else(|| Error::MissingTable {
                table: table.clone(),
            })?;
        let identity: String = row.get(0);
        let has_pk: bool = row.get(1);
        if (identity == "d" && !has_pk) || identity == "n" {
            return Err(Error::MissingKey {
                table: table.clone(),
                identity: match identity.as_str() {
                    "n" => "NOTHING".into(),
                    _ => "DEFAULT".into(),
                },
            });
        }
    }
    ensure_publication(client, config).await
}

async fn ensure_publication(client: &Client, config: &PostgresConfig) -> Result<()> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(Error::query("reading publications"))?
        .is_some();
    if !exists {
        if !config.create_publication {
            return Err(Error::MissingPublication {
                publication: config.publication.clone(),
            });
        }
        let tables: Vec<String> = config.tables.iter().map(quote_table).collect();
        // Changes to a partitioned table's partitions then come under the
        // table's own name, the one declared.
        let sql = format!(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
            quote_ident(&config.publication),
            tables.join(", ")
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(Error::query("creating the publication"))?;
    }
    check_published(client, config).await
}

/// Checks that the publication publishes every declared table under its own
/// name. At start, and again while streaming: a table dropped and created
/// again, or swapped in by an online schema change, is not in the
/// publication (membership follows the table, not its name), and its changes
/// would stop without a trace.
pub(crate) async fn check_published(client: &Client, config: &PostgresConfig) -> Result<()> {
    let published: Vec<TableName> = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables \
             WHERE pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(Error::query("reading publication tables"))?
        .iter()
        .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    let missing: Vec<TableName> = config
        .tables
        .iter()
        .filter(|t| !published.contains(t))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for table in &missing {
        match table_kind(client, table).await? {
            None => {
                return Err(Error::MissingTable {
                    table: table.clone(),
                });
            }
            Some(kind) if kind == "p" => {
                return Err(Error::PartitionsPublishedApart {
                    publication: config.publication.clone(),
                    table: table.clone(),
                });
            }
            Some(_) => {}
        }
    }
    Err(Error::PublicationMissingTables {
        publication: config.publication.clone(),
        tables: missing,
    })
}

/// The `relkind` of `table` (`p` for a partitioned table, whose rows live
/// in partitions); `None` when no such table exists.
async fn table_kind(client: &Client, table: &TableName) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema.as_str(), &table.name.as_str()],
        )
        .await
        .map_err(Error::query("reading a table's kind"))?;
    Ok(row.map(|r| r.get(0)))
}

/// The server's `wal_sender_timeout`; zero when disabled.
pub(crate) async fn wal_sender_timeout(client: &Client) -> Result<Duration> {
    let millis: i64 = client
        .query_one(
            "SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'",
            &[],
        )
        .await
        .map_err(Error::query("reading wal_sender_timeout"))?
        .get(0);
    Ok(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

/// Ends the walsender `pid` if it still holds `slot`: ours, from a stream
/// abandoned as stalled. It would otherwise hold the slot until its own
/// `wal_sender_timeout` ran out. A pid that no longer holds the slot may have
/// been reused, so nothing else is ever ended.
pub(crate) async fn end_abandoned_walsender(client: &Client, slot: &str, pid: i32) -> Result<()> {
    let ended = client
        .query_opt(
            "SELECT pg_catalog.pg_terminate_backend(active_pid) \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND active_pid = $2",
            &[&slot, &pid],
        )
        .await
        .map_err(Error::query("ending the walsender of a stalled stream"))?;
    if ended.is_some() {
        info!(slot, pid, "ended the walsender of a stalled stream");
    }
    Ok(())
}

/// The state of an existing slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotState {
    /// The slot's confirmed flush position.
    pub(crate) confirmed_flush: u64,
}

/// Looks the slot up; `None` when it does not exist. Errors when it is lost,
/// in use, or not a pgoutput slot of this database.
pub(crate) async fn existing_slot(
    client: &Client,
    config: &PostgresConfig,
) -> Result<Option<SlotState>> {
    while_held(|| read_slot(client, config)).await
}

/// Waits until no process holds `slot` (or it does not exist), as
/// [`existing_slot`] does; `SlotInUse` when one still does.
pub(crate) async fn await_released(client: &Client, slot: &str) -> Result<()> {
    while_held(|| async {
        let row = client
            .query_opt(
                "SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(Error::query("reading replication slots"))?;
        match row.and_then(|r| r.get::<_, Option<i32>>(0)) {
            Some(pid) => Err(Error::SlotInUse {
                slot: slot.to_owned(),
                pid,
            }),
            None => Ok(()),
        }
    })
    .await
}

/// Runs `look` again while it finds the slot held, for up to two seconds: a
/// walsender of a connection just closed (ours) takes a moment to notice and
/// let go, and only a holder that stays is reported as `SlotInUse`.
async fn while_held<T, F, Fut>(mut look: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempts = 0;
    loop {
        match look().await {
            Err(Error::SlotInUse { .. }) if attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn read_slot(client: &Client, config: &PostgresConfig) -> Result<Option<SlotState>> {
    let row = client
        .query_opt(
            "SELECT active_pid, coalesce(wal_status, ''), confirmed_flush_lsn::text, \
                    coalesce(plugin::text, ''), coalesce(database::text, '') \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            &[&config.slot],
        )
        .await
        .map_err(Error::query("reading replication slots"))?;
    let Some(row) = row else { return Ok(None) };
    let active_pid: Option<i32> = row.get(0);
    let wal_status: String = row.get(1);
    let confirmed: Option<String> = row.get(2);
    let plugin: String = row.get(3);
    let database: String = row.get(4);
    if wal_status == "lost" {
        return Err(Error::NeedsBackfill {
            slot: config.slot.clone(),
            reason: "its WAL was removed (wal_status = lost)".into(),
        });
    }
    if plugin != "pgoutput" || database != config.database {
        return Err(Error::Config {
            field: "slot",
            reason: format!(
                "slot {} exists with plugin {plugin} on database {database}; \
                 choose another slot name or drop it",
                config.slot
            ),
        });
    }
    if let Some(pid) = active_pid {
        return Err(Error::SlotInUse {
            slot: config.slot.clone(),
            pid,
        });
    }
    Ok(Some(SlotState {
        confirmed_flush: confirmed.as_deref().and_then(parse_lsn).unwrap_or(0),
    }))
}

/// Drops the replication slot if it exists (teardown, major-version upgrades).
pub async fn drop_slot(client: &Client, slot: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT count(pg_catalog.pg_drop_replication_slot(slot_name)) \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(Error::query("dropping the replication slot"))?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// Drops the publication if it exists.
pub async fn drop_publication(client: &Client, publication: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "DROP PUBLICATION IF EXISTS {}",
            quote_ident(publication)
        ))
        .await
        .map_err(Error::query("dropping the publication"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_embedded_quotes_doubled() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table(&TableName::new("s", "T")), "\"s\".\"T\"");
    }
}
