//! Which source column a sink column holds.

use std::collections::BTreeMap;

use super::VerifyError;
use crate::event::TableSchema;

/// The columns compared: pairs of a source column and the sink column that
/// holds it. Sink columns of their own (a soft-delete flag) are not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pairs: Vec<(usize, usize)>,
}

impl ColumnMap {
    /// Pairs each source column with the sink column of its name, or of the
    /// name `renames` gives it (a sink mapping's `rename_columns`); source
    /// columns the sink lacks (excluded ones) are not compared.
    ///
    /// The sink's primary key must hold the source's key columns, in the
    /// same order, for key ranges to mean the same rows on both sides.
    pub fn by_name(
        source: &TableSchema,
        sink: &TableSchema,
        renames: &BTreeMap<String, String>,
    ) -> Result<Self, VerifyError> {
        let mut pairs = Vec::new();
        for (i, column) in source.columns.iter().enumerate() {
            let name = renames.get(&column.name).unwrap_or(&column.name);
            if let Some(j) = sink.column_index(name) {
                pairs.push((i, j));
            }
        }
        let map = Self { pairs };
        let mapped_key: Option<Vec<usize>> = source
            .primary_key
            .iter()
            .map(|&k| map.sink_column(k as usize))
            .collect();
        let sink_key: Vec<usize> = sink.primary_key.iter().map(|&k| k as usize).collect();
        if source.primary_key.is_empty() || mapped_key.as_ref() != Some(&sink_key) {
            return Err(VerifyError::Columns {
                table: source.table.to_string(),
                reason: "the sink table's primary key must be the source's key columns, in the \
                         same order (check the mapping's renames)"
                    .into(),
            });
        }
        Ok(map)
    }

    /// The compared pairs of source and sink column indexes.
    pub fn pairs(&self) -> &[(usize, usize)] {
        &self.pairs
    }

    fn sink_column(&self, source: usize) -> Option<usize> {
        self.pairs
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Column, DataType, TableName};

    fn schema(names: &[&str], key: &[u32]) -> TableSchema {
        TableSchema {
            table: TableName::new("public", "t"),
            columns: names
                .iter()
                .map(|n| Column {
                    name: (*n).into(),
                    data_type: DataType::Int {
                        bits: 64,
                        signed: true,
                    },
                    source_type: "bigint".into(),
                    nullable: true,
                })
                .collect(),
            primary_key: key.to_vec(),
        }
    }

    #[test]
    fn renamed_and_excluded_columns_pair_up_by_the_sink_names() {
        let source = schema(&["id", "name", "secret"], &[0]);
        let sink = schema(&["_cdc_deleted", "id", "full_name"], &[1]);
        let renames = BTreeMap::from([("name".to_string(), "full_name".to_string())]);
        let map = ColumnMap::by_name(&source, &sink, &renames).unwrap();
        assert_eq!(map.pairs(), &[(0, 1), (1, 2)]);
    }

    #[test]
    fn a_sink_keyed_otherwise_is_refused() {
        let source = schema(&["a", "b"], &[0, 1]);
        let reversed = schema(&["a", "b"], &[1, 0]);
        let err = ColumnMap::by_name(&source, &reversed, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, VerifyError::Columns { .. }), "{err}");
        let keyless = schema(&["a", "b"], &[]);
        assert!(ColumnMap::by_name(&keyless, &keyless, &BTreeMap::new()).is_err());
    }
}
