//! Relation descriptions to table schemas, with catalog reads for nullability,
//! primary keys, type names and user-defined types (enums, domains, arrays).

use std::collections::HashMap;
use std::sync::Arc;

use cdc_core::event::{Column, TableName, TableSchema};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pgoutput::{RelationMessage, ReplicaIdentity};
use crate::value::ColumnType;

/// What the source knows about one published relation.
#[derive(Debug, Clone)]
pub struct RelationInfo {
    /// The schema record for the table.
    pub schema: Arc<TableSchema>,
    /// How each column's values decode, in column order.
    pub types: Vec<ColumnType>,
    /// The relation's replica identity.
    pub identity: ReplicaIdentity,
}

/// Resolves type OIDs and table metadata through an ordinary connection.
#[derive(Debug, Default)]
pub struct Catalog {
    types: HashMap<u32, ColumnType>,
}

/// Domains may nest and arrays may hold domains; bound the recursion.
const MAX_TYPE_DEPTH: usize = 8;

impl Catalog {
    /// How values of type `oid` decode.
    pub async fn column_type(&mut self, client: &Client, oid: u32) -> Result<ColumnType> {
        self.resolve(client, oid, 0).await
    }

    async fn resolve(&mut self, client: &Client, oid: u32, depth: usize) -> Result<ColumnType> {
        if let Some(t) = ColumnType::builtin(oid) {
            return Ok(t);
        }
        if let Some(t) = self.types.get(&oid) {
            return Ok(t.clone());
        }
        if depth > MAX_TYPE_DEPTH {
            return Ok(ColumnType::Other);
        }
        let row = client
            .query_opt(
                "SELECT t.typtype::text, t.typbasetype, t.typelem, t.typdelim::text, \
                        t.typcategory::text \
                 FROM pg_catalog.pg_type t WHERE t.oid = $1",
                &[&oid],
            )
            .await
            .map_err(Error::query("reading a type from pg_type"))?;
        let Some(row) = row else {
            return Ok(ColumnType::Other);
        };
        let typtype: String = row.get(0);
        let base: u32 = row.get(1);
        let elem: u32 = row.get(2);
        let delim: String = row.get(3);
        let category: String = row.get(4);
        let resolved = match typtype.as_str() {
            "e" => {
                let labels = client
                    .query(
                        "SELECT enumlabel::text FROM pg_catalog.pg_enum \
                         WHERE enumtypid = $1 ORDER BY enumsortorder",
                        &[&oid],
                    )
                    .await
                    .map_err(Error::query("reading enum labels"))?
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect();
                ColumnType::Enum(labels)
            }
            "d" => Box::pin(self.resolve(client, base, depth + 1)).await?,
            _ if category == "A" && elem != 0 => {
                let element = Box::pin(self.resolve(client, elem, depth + 1)).await?;
                let delimiter = delim.bytes().next().unwrap_or(b',');
                ColumnType::Array(Box::new(element), delimiter)
            }
            _ => ColumnType::Other,
        };
        self.types.insert(oid, resolved.clone());
        Ok(resolved)
    }

    /// Builds the relation's schema from its description and the catalog.
    pub async fn describe(
        &mut self,
        client: &Client,
        relation: &RelationMessage<'_>,
    ) -> Result<RelationInfo> {
        let table = TableName::new(relation.namespace, relation.name);
        let attributes = client
            .query(
                "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                        a.attnotnull, \
                        coalesce((SELECT k.n FROM pg_catalog.pg_index i, \
                                  unnest(i.indkey) WITH ORDINALITY k(att, n) \
                                  WHERE i.indrelid = a.attrelid AND i.indisprimary \
                                  AND k.att = a.attnum), 0)::int4 \
                 FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&relation.id],
            )
            .await
            .map_err(Error::query("reading table columns from pg_attribute"))?;
        let mut by_name = HashMap::new();
        for row in &attributes {
            let name: String = row.get(0);
            let type_name: String = row.get(1);
            let not_null: bool = row.get(2);
            let pk_position: i32 = row.get(3);
            by_name.insert(name, (type_name, not_null, pk_position));
        }
        let mut columns = Vec::with_capacity(relation.columns.len());
        let mut types = Vec::with_capacity(relation.columns.len());
        let mut pk = Vec::new();
        for (i, c) in relation.columns.iter().enumerate() {
            let column_type = self.column_type(client, c.type_oid).await?;
            let (source_type, not_null, pk_position) = by_name
                .get(c.name)
                .cloned()
                .unwrap_or_else(|| (format!("oid {}", c.type_oid), false, 0));
            if pk_position > 0 {
                pk.push((pk_position, i as u32));
            }
            columns.push(Column {
                name: c.name.to_owned(),
                data_type: column_type.data_type(c.type_oid, c.type_modifier),
                source_type,
                nullable: !not_null,
            });
            types.push(column_type);
        }
        pk.sort_unstable();
        let mut primary_key: Vec<u32> = pk.into_iter().map(|(_, i)| i).collect();
        if primary_key.is_empty() && relation.replica_identity == ReplicaIdentity::Index {
            primary_key = relation
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_key)
                .map(|(i, _)| i as u32)
                .collect();
        }
        Ok(RelationInfo {
            schema: Arc::new(TableSchema {
                table,
                columns,
                primary_key,
            }),
            types,
            identity: relation.replica_identity,
        })
    }
}
