//! Offline decoding without a catalog, for benches and fuzzing.

use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{TableName, TableSchema};

use super::Assembler;
use crate::error::{Error, Result};
use crate::pgoutput::{PgOutputMessage, RelationMessage};
use crate::schema::RelationInfo;
use crate::value::ColumnType;

/// Describes a relation from builtin type OIDs only (no catalog): user-defined
/// types decode as text. For benches and fuzzing.
#[doc(hidden)]
pub fn describe_offline(relation: &RelationMessage<'_>) -> RelationInfo {
    let types: Vec<ColumnType> = relation
        .columns
        .iter()
        .map(|c| ColumnType::builtin(c.type_oid).unwrap_or(ColumnType::Other))
        .collect();
    let columns = relation
        .columns
        .iter()
        .zip(&types)
        .map(|(c, t)| cdc_core::event::Column {
            name: c.name.to_owned(),
            data_type: t.data_type(c.type_oid, c.type_modifier),
            source_type: format!("oid {}", c.type_oid),
            nullable: true,
        })
        .collect();
    RelationInfo {
        schema: Arc::new(TableSchema {
            table: TableName::new(relation.namespace, relation.name),
            columns,
            primary_key: relation
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_key)
                .map(|(i, _)| i as u32)
                .collect(),
        }),
        types,
        identity: relation.replica_identity,
    }
}

/// Decodes a stream of pgoutput messages offline (relations described from
/// builtin types) with `transaction_chunk_bytes` as the part size; returns the
/// batches. For benches and fuzzing.
#[doc(hidden)]
pub fn decode_offline<'a>(
    tables: &[TableName],
    transaction_chunk_bytes: u64,
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<SourceBatch>> {
    let mut assembler = Assembler::new(tables, 0, transaction_chunk_bytes);
    let mut out = Vec::new();
    for bytes in messages {
        let message =
            crate::pgoutput::decode(bytes).map_err(|source| Error::Decode { lsn: 0, source })?;
        if let PgOutputMessage::Relation(relation) = &message {
            assembler.add_relation(relation.id, describe_offline(relation))?;
            continue;
        }
        if let Some(batch) = assembler.handle(message, bytes.len())? {
            out.push(batch);
        }
    }
    Ok(out)
}
