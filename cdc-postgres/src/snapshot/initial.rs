//! The initial snapshot: every declared table read in primary-key chunks inside
//! one `REPEATABLE READ` transaction that imported the slot's exported
//! snapshot, so snapshot plus stream is exact.

use cdc_core::event::{Change, Record, SourcePosition, TableName};
use tokio_postgres::Client;

use super::{ChunkReader, KeyCursor};
use crate::error::{Error, Result};
use crate::schema::Catalog;

/// Reads the tables as of the slot's consistent point.
///
/// Records are `Schema` (before each table's first rows) and `SnapshotRead`
/// changes positioned at the consistent point; they carry no `Begin`/`Commit`,
/// so a change log's last source position does not move past an unfinished
/// snapshot. A snapshot interrupted by a crash must be taken again (drop the
/// slot); it is not resumable.
pub struct InitialSnapshot {
    client: Client,
    tables: Vec<TableName>,
    catalog: Catalog,
    current: Option<(ChunkReader, Option<KeyCursor>)>,
    position: u64,
    chunk_rows: usize,
    finished: bool,
}

impl std::fmt::Debug for InitialSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialSnapshot")
            .field("tables_left", &self.tables.len())
            .field("position", &self.position)
            .finish()
    }
}

/// Whether a server-issued snapshot name is safe to place in SQL text
/// (`SET TRANSACTION SNAPSHOT` takes no parameters).
fn valid_snapshot_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl InitialSnapshot {
    /// Opens the `REPEATABLE READ` transaction on `client` with the exported snapshot.
    pub(crate) async fn open(
        client: Client,
        snapshot_name: &str,
        tables: Vec<TableName>,
        position: u64,
        chunk_rows: usize,
    ) -> Result<Self> {
        if !valid_snapshot_name(snapshot_name) {
            return Err(Error::protocol("unexpected exported snapshot name"));
        }
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                 SET TRANSACTION SNAPSHOT '{snapshot_name}'"
            ))
            .await
            .map_err(Error::query("importing the slot's exported snapshot"))?;
        let mut tables = tables;
        tables.reverse();
        Ok(Self {
            client,
            tables,
            catalog: Catalog::default(),
            current: None,
            position,
            chunk_rows,
            finished: false,
        })
    }

    /// The slot's consistent point: the stream continues after it.
    pub fn position(&self) -> SourcePosition {
        SourcePosition::Postgres { lsn: self.position }
    }

    /// The next chunk's records; `None` when every table has been read (the
    /// transaction is then committed).
    pub async fn next_records(&mut self) -> Result<Option<Vec<Record>>> {
        let mut records = Vec::new();
        loop {
            if self.finished {
                return Ok(None);
            }
            let Some((reader, after)) = &mut self.current else {
                match self.tables.pop() {
                    Some(table) => {
                        let reader = ChunkReader::new(
                            &self.client,
                            &mut self.catalog,
                            &table,
                            self.chunk_rows,
                        )
                        .await?;
                        records.push(Record::Schema((**reader.schema()).clone()));
                        self.current = Some((reader, None));
                        continue;
                    }
                    None => {
                        self.client
                            .batch_execute("COMMIT")
                            .await
                            .map_err(Error::query("ending the snapshot transaction"))?;
                        self.finished = true;
                        return Ok(None);
                    }
                }
            };
            let chunk = reader.read_chunk(&self.client, after.as_ref()).await?;
            let table = reader.schema().table.clone();
            let position = SourcePosition::Postgres { lsn: self.position };
            records.extend(chunk.rows.into_iter().map(|row| {
                Record::Change(Change::snapshot_read(
                    table.clone(),
                    row,
                    position.clone(),
                    0,
                ))
            }));
            match chunk.next {
                Some(next) => *after = Some(next),
                None => self.current = None,
            }
            if records.iter().any(|r| matches!(r, Record::Change(_))) {
                return Ok(Some(records));
            }
        }
    }
}
