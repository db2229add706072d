//! Formatting a batch's lines and committing them with the sidecar.

use std::collections::HashMap;

use cdc_core::event::TableName;
use cdc_core::{SinkBatch, SinkEvent};

use super::config::JsonlConfig;
use super::mapping::envelope;
use crate::error::Result;
use crate::mapping::TargetTable;

/// Formats every change of the batch (in log order) as envelope lines.
pub(super) fn lines(
    config: &JsonlConfig,
    tables: &mut HashMap<TableName, TargetTable>,
    batch: &SinkBatch,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for event in &batch.events {
        let SinkEvent::Change {
            offset,
            schema,
            change,
        } = event
        else {
            continue;
        };
        let fresh = tables
            .get(&schema.table)
            .is_none_or(|t| t.columns.len() != schema.columns.len() || !same(t, schema));
        if fresh {
            match config.mapping.resolve(schema)? {
                Some(t) => {
                    tables.insert(schema.table.clone(), t);
                }
                None => continue,
            }
        }
        let Some(table) = tables.get(&schema.table) else {
            continue;
        };
        out.extend_from_slice(envelope(table, *offset, change).as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

fn same(t: &TargetTable, schema: &cdc_core::event::TableSchema) -> bool {
    t.columns
        .iter()
        .all(|c| schema.columns.get(c.source_index) == Some(&c.source))
}
