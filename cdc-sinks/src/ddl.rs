//! The `CREATE TABLE` column list every SQL sink builds the same way: the
//! mapped columns, the bookkeeping columns of the write mode in the dialect's
//! own types, and the primary key.

use std::fmt::Display;

use crate::mapping::TargetTable;
use crate::mode::{
    HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED, SOFT_DELETED, WriteMode,
};
use crate::quote::Dialect;

/// A destination's types (with constraints) for the bookkeeping columns.
pub(crate) struct BookkeepingTypes {
    /// [`HISTORY_OP`].
    pub op: &'static str,
    /// [`HISTORY_COMMIT_TIME`].
    pub commit_time: &'static str,
    /// [`HISTORY_OFFSET`], the primary key of a history table.
    pub offset: &'static str,
    /// [`HISTORY_UNCHANGED`].
    pub unchanged: &'static str,
    /// [`SOFT_DELETED`].
    pub soft_deleted: &'static str,
}

/// The column definitions of `table` in its write mode: each column with
/// `column_type(i)` (key columns `NOT NULL`, except in history mode, where the
/// key repeats), then the mode's bookkeeping columns, then the primary key.
pub(crate) fn column_definitions<T: Display>(
    dialect: Dialect,
    table: &TargetTable,
    types: &BookkeepingTypes,
    column_type: impl Fn(usize) -> T,
) -> Vec<String> {
    let mut defs: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let not_null = if table.is_key(i) && table.write_mode != WriteMode::History {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{not_null}", dialect.ident(&c.name), column_type(i))
        })
        .collect();
    let bookkeeping = |name: &str, ty: &str| format!("{} {ty}", dialect.ident(name));
    match table.write_mode {
        WriteMode::History => {
            defs.push(bookkeeping(HISTORY_OP, types.op));
            defs.push(bookkeeping(HISTORY_COMMIT_TIME, types.commit_time));
            defs.push(bookkeeping(HISTORY_OFFSET, types.offset));
            defs.push(bookkeeping(HISTORY_UNCHANGED, types.unchanged));
        }
        mode => {
            if mode == WriteMode::SoftDelete {
                defs.push(bookkeeping(SOFT_DELETED, types.soft_deleted));
            }
            if !table.key.is_empty() {
                let key = dialect.list(table.key_columns().map(|c| c.name.as_str()));
                defs.push(format!("PRIMARY KEY ({key})"));
            }
        }
    }
    defs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::TableMapping;
    use cdc_core::event::{Column, DataType, TableName, TableSchema};

    const TYPES: BookkeepingTypes = BookkeepingTypes {
        op: "OP",
        commit_time: "TIME",
        offset: "OFFSET PK",
        unchanged: "UNCHANGED",
        soft_deleted: "FLAG",
    };

    fn table(mode: WriteMode) -> TargetTable {
        let col = |name: &str| Column {
            name: name.into(),
            data_type: DataType::Int {
                bits: 64,
                signed: true,
            },
            source_type: "bigint".into(),
            nullable: true,
        };
        let schema = TableSchema {
            table: TableName::new("s", "t"),
            columns: vec![col("id"), col("note")],
            primary_key: vec![0],
        };
        let mut table = TableMapping::default().resolve(&schema).unwrap().unwrap();
        table.write_mode = mode;
        table
    }

    fn defs(mode: WriteMode) -> Vec<String> {
        column_definitions(Dialect::MySql, &table(mode), &TYPES, |i| format!("T{i}"))
    }

    #[test]
    fn each_write_mode_gets_its_bookkeeping_columns_and_key() {
        assert_eq!(
            defs(WriteMode::Upsert),
            ["`id` T0 NOT NULL", "`note` T1", "PRIMARY KEY (`id`)"]
        );
        assert_eq!(
            defs(WriteMode::SoftDelete),
            [
                "`id` T0 NOT NULL",
                "`note` T1",
                "`_cdc_deleted` FLAG",
                "PRIMARY KEY (`id`)"
            ]
        );
        assert_eq!(
            defs(WriteMode::History),
            [
                "`id` T0",
                "`note` T1",
                "`_cdc_op` OP",
                "`_cdc_commit_time` TIME",
                "`_cdc_offset` OFFSET PK",
                "`_cdc_unchanged` UNCHANGED"
            ]
        );
    }
}
