//! Schemas of the tables seen in the stream: built from TABLE_MAP metadata,
//! cached per table and re-emitted when the metadata changes (after DDL).

use std::collections::HashMap;
use std::sync::Arc;

use cdc_core::event::{TableName, TableSchema};

use crate::binlog::cursor::Decoded;
use crate::rows::TableEntry;
use crate::rows::column::TypeHint;
use crate::rows::table_map::TableMap;

/// Column type hints per table (MariaDB types the binlog does not name).
pub type Hints = HashMap<TableName, Vec<(String, TypeHint)>>;

#[derive(Debug)]
struct Cached {
    map: TableMap,
    entry: Arc<TableEntry>,
    emitted: bool,
}

/// The schema cache.
#[derive(Debug, Default)]
pub struct SchemaCache {
    tables: HashMap<TableName, Cached>,
    hints: Hints,
}

impl SchemaCache {
    /// Replaces the hints of one table; its next table map rebuilds its schema.
    pub fn set_hints(&mut self, table: TableName, hints: Vec<(String, TypeHint)>) {
        // Removing the entry also invalidates the decoder's raw table-map cache
        // (its entries are no longer current).
        self.tables.remove(&table);
        self.hints.insert(table, hints);
    }

    /// Whether `entry` is the table's current entry and its schema was emitted.
    pub fn is_current(&self, entry: &Arc<TableEntry>) -> bool {
        self.tables
            .get(&entry.schema.table)
            .is_some_and(|c| c.emitted && Arc::ptr_eq(&c.entry, entry))
    }

    /// Whether `map` would produce a schema different from the cached one.
    pub fn is_new(&self, map: &TableMap) -> bool {
        let name = TableName::new(map.schema.clone(), map.table.clone());
        self.tables
            .get(&name)
            .is_none_or(|c| !same_layout(&c.map, map))
    }

    /// The entry for `map`, and the schema to emit if it is new or changed since
    /// the last one emitted for the table.
    pub fn resolve(
        &mut self,
        map: &TableMap,
    ) -> Decoded<(Arc<TableEntry>, Option<Arc<TableSchema>>)> {
        let name = TableName::new(map.schema.clone(), map.table.clone());
        if let Some(cached) = self.tables.get_mut(&name)
            && same_layout(&cached.map, map)
        {
            let emit = (!cached.emitted).then(|| cached.entry.schema.clone());
            cached.emitted = true;
            return Ok((cached.entry.clone(), emit));
        }
        let hints = self.hints.get(&name).map_or(&[][..], Vec::as_slice);
        let entry = Arc::new(TableEntry::build(map, hints)?);
        let changed = self
            .tables
            .get(&name)
            .is_none_or(|c| !c.emitted || c.entry.schema != entry.schema);
        let emit = changed.then(|| entry.schema.clone());
        self.tables.insert(
            name,
            Cached {
                map: map.clone(),
                entry: entry.clone(),
                emitted: true,
            },
        );
        Ok((entry, emit))
    }

    /// Forgets which schemas were emitted, so each is emitted again at first use
    /// (after a restart the log may have lost track of nothing, but a new reader
    /// must say what it decodes with).
    pub fn forget_emitted(&mut self) {
        for c in self.tables.values_mut() {
            c.emitted = false;
        }
    }
}

/// Whether two table maps describe the same columns (the table id may differ).
fn same_layout(a: &TableMap, b: &TableMap) -> bool {
    a.columns == b.columns
        && a.primary_key == b.primary_key
        && a.schema == b.schema
        && a.table == b.table
}
