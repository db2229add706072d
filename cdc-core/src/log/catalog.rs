//! The schema catalog: every table schema that took effect, with its offset, and
//! the last durable source position, so both survive retention and reopen.
//!
//! File `schemas.catalog` (replaced atomically: temp file, fsync, rename, fsync dir):
//!
//! ```text
//! 0   [u8; 8] magic "CDCSCAT1"
//! 8   u32 crc32 of the JSON body
//! 12  u32 body length
//! 16  JSON body: {"covered_until": u64, "last_position": .., "schemas": [[offset, schema], ..]}
//! ```
//!
//! `covered_until` is the offset up to which the catalog holds every schema
//! record; on open, records at or after it are scanned from the segments. The
//! writer rewrites the catalog when it seals a segment, and retention rewrites it
//! before removing any segment, so a removed segment's schemas are always in it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::batch::get_u32;
use super::fs::{FileSystem, read_all, replace_file};
use crate::error::{Error, Result};
use crate::event::{SourcePosition, TableName, TableSchema};

const CATALOG_MAGIC: [u8; 8] = *b"CDCSCAT1";
/// File name of the catalog inside the log directory.
pub(crate) const CATALOG_FILE: &str = "schemas.catalog";

/// Schemas by table, each list ascending by offset.
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    /// Every schema record below this offset is in `schemas`.
    pub covered_until: u64,
    /// Position of the last Commit or Heartbeat below `covered_until`.
    pub last_position: Option<SourcePosition>,
    /// Schemas per table, ascending by offset.
    pub schemas: BTreeMap<TableName, Vec<(u64, Arc<TableSchema>)>>,
}

#[derive(Serialize, Deserialize)]
struct CatalogFile {
    covered_until: u64,
    last_position: Option<SourcePosition>,
    schemas: Vec<(u64, TableSchema)>,
}

impl Catalog {
    /// Records a schema taking effect at `offset`.
    pub fn insert(&mut self, offset: u64, schema: Arc<TableSchema>) {
        let list = self.schemas.entry(schema.table.clone()).or_default();
        let at = list.partition_point(|(o, _)| *o <= offset);
        if at > 0 && list[at - 1].0 == offset {
            list[at - 1].1 = schema;
        } else {
            list.insert(at, (offset, schema));
        }
    }

    /// The schema of `table` in effect at `offset`.
    pub fn at(&self, table: &TableName, offset: u64) -> Option<Arc<TableSchema>> {
        let list = self.schemas.get(table)?;
        let i = list.partition_point(|(o, _)| *o <= offset);
        (i > 0).then(|| list[i - 1].1.clone())
    }

    /// Loads the catalog; a missing file is an empty catalog, a damaged one an error.
    pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Catalog> {
        let path = dir.join(CATALOG_FILE);
        let bytes = match read_all(fs, &path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let corrupt = |reason: &str| Error::corrupt(&path, 0, reason);
        if bytes.len() < 16 || bytes[..8] != CATALOG_MAGIC {
            return Err(corrupt("schema catalog header is missing or damaged"));
        }
        let len = get_u32(&bytes, 12).unwrap_or(0) as usize;
        let body = bytes
            .get(16..16 + len)
            .ok_or_else(|| corrupt("schema catalog is truncated"))?;
        if get_u32(&bytes, 8) != Some(crc32fast::hash(body)) {
            return Err(corrupt("schema catalog checksum mismatch"));
        }
        let file: CatalogFile = serde_json::from_slice(body)
            .map_err(|_| corrupt("schema catalog body is not valid"))?;
        let mut catalog = Catalog {
            covered_until: file.covered_until,
            last_position: file.last_position,
            schemas: BTreeMap::new(),
        };
        for (offset, schema) in file.schemas {
            catalog.insert(offset, Arc::new(schema));
        }
        Ok(catalog)
    }

    /// Writes the catalog atomically.
    pub fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        let file = CatalogFile {
            covered_until: self.covered_until,
            last_position: self.last_position.clone(),
            schemas: self
                .schemas
                .values()
                .flatten()
                .map(|(o, s)| (*o, TableSchema::clone(s)))
                .collect(),
        };
        let body = serde_json::to_vec(&file).map_err(|e| Error::Config {
            field: "schema catalog",
            reason: e.to_string(),
        })?;
        let mut bytes = Vec::with_capacity(16 + body.len());
        bytes.extend_from_slice(&CATALOG_MAGIC);
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        let path = dir.join(CATALOG_FILE);
        replace_file(fs, &path, &bytes).map_err(|e| Error::io(path, e))
    }
}
