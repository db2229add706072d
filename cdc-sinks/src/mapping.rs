//! Per-pipeline table and column mapping: include/exclude filters, renames,
//! excluded columns, type overrides, and the write and prepare modes per table.

use std::collections::BTreeMap;

use cdc_core::event::{Column, TableName, TableSchema};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SinkError};
use crate::mode::{DroppedColumns, PrepareMode, WriteMode};

/// How source tables map onto target tables. Serde, unknown fields rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableMapping {
    /// Source tables to apply, as `schema.table` patterns where `*` matches any
    /// run of characters. Default: empty, meaning every table.
    pub include: Vec<String>,
    /// Source tables to skip (same patterns); wins over `include`. Default: none.
    pub exclude: Vec<String>,
    /// Write mode of tables without their own rule. Default: upsert.
    pub write_mode: WriteMode,
    /// Prepare mode of tables without their own rule. Default: keep.
    pub prepare: PrepareMode,
    /// What schema evolution does with dropped columns. Default: keep nullable.
    pub dropped_columns: DroppedColumns,
    /// Rules for single tables. Default: none.
    pub tables: Vec<TableRule>,
}

/// The mapping of one source table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableRule {
    /// Source schema (database) name, exactly as the source spells it.
    pub schema: String,
    /// Source table name.
    pub table: String,
    /// Target table name. Default: the source table name.
    pub target: Option<String>,
    /// Column renames, source name to target name. Default: none.
    pub rename_columns: BTreeMap<String, String>,
    /// Source columns not written to the target. Key columns cannot be excluded.
    pub exclude_columns: Vec<String>,
    /// Target SQL type per source column name, e.g. `TEXT` for a `varchar(50)`.
    /// Letters, digits, spaces, `_`, `(`, `)` and `,` only.
    pub type_overrides: BTreeMap<String, String>,
    /// Write mode of this table. Default: the mapping's.
    pub write_mode: Option<WriteMode>,
    /// Prepare mode of this table. Default: the mapping's.
    pub prepare: Option<PrepareMode>,
}

/// One target column and the source column it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    /// Target column name.
    pub name: String,
    /// Index of the source column in the source row.
    pub source_index: usize,
    /// The source column.
    pub source: Column,
    /// The target SQL type set by the mapping, if any.
    pub type_override: Option<String>,
}

/// A source table resolved against the mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTable {
    /// The source table.
    pub source: TableName,
    /// Target table name (the sink supplies its namespace).
    pub name: String,
    /// Target columns in source order, excluded columns left out.
    pub columns: Vec<TargetColumn>,
    /// Indexes into `columns` of the key, in key order.
    pub key: Vec<usize>,
    /// Write mode.
    pub write_mode: WriteMode,
    /// Prepare mode.
    pub prepare: PrepareMode,
}

impl TargetTable {
    /// The key columns.
    pub fn key_columns(&self) -> impl Iterator<Item = &TargetColumn> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    /// Whether column `i` (into `columns`) is part of the key.
    pub fn is_key(&self, i: usize) -> bool {
        self.key.contains(&i)
    }
}

impl TableMapping {
    /// Checks patterns, renames and type overrides.
    pub fn validate(&self) -> Result<()> {
        for p in self.include.iter().chain(&self.exclude) {
            if p.is_empty() {
                return Err(SinkError::config("include/exclude", "empty pattern"));
            }
        }
        for rule in &self.tables {
            let field = format!("tables[{}.{}]", rule.schema, rule.table);
            if rule.target.as_deref() == Some("") {
                return Err(SinkError::config(field, "empty target name"));
            }
            for (col, ty) in &rule.type_overrides {
                let ok = !ty.trim().is_empty()
                    && ty
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || " _(),".contains(c));
                if !ok {
                    return Err(SinkError::config(
                        format!("{field}.type_overrides[{col}]"),
                        "a type may hold only letters, digits, spaces, `_`, `(`, `)` and `,`",
                    ));
                }
            }
            if rule.rename_columns.values().any(String::is_empty) {
                return Err(SinkError::config(field, "empty column rename"));
            }
        }
        Ok(())
    }

    /// Whether the mapping applies changes of `table`.
    pub fn includes(&self, table: &TableName) -> bool {
        let full = table.to_string();
        let included = self.include.is_empty() || self.include.iter().any(|p| glob(p, &full));
        included && !self.exclude.iter().any(|p| glob(p, &full))
    }

    fn rule(&self, table: &TableName) -> Option<&TableRule> {
        self.tables
            .iter()
            .find(|r| r.schema == table.schema && r.table == table.name)
    }

    /// The column renames of `table`, source name to target name, as
    /// [`ColumnMap::by_name`](cdc_core::verify::ColumnMap::by_name) takes them
    /// to pair a source table with this mapping's target for verification.
    pub fn column_renames(&self, table: &TableName) -> BTreeMap<String, String> {
        self.rule(table)
            .map(|r| r.rename_columns.clone())
            .unwrap_or_default()
    }

    /// The write mode of `table`.
    pub fn write_mode_of(&self, table: &TableName) -> WriteMode {
        self.rule(table)
            .and_then(|r| r.write_mode)
            .unwrap_or(self.write_mode)
    }

    /// The write mode of `table`, or `None` when the filters skip it.
    pub(crate) fn mode_if_included(&self, table: &TableName) -> Option<WriteMode> {
        self.includes(table).then(|| self.write_mode_of(table))
    }

    /// Resolves a source schema to its target table, or `None` when filtered out.
    pub fn resolve(&self, schema: &TableSchema) -> Result<Option<TargetTable>> {
        if !self.includes(&schema.table) {
            return Ok(None);
        }
        let rule = self.rule(&schema.table);
        let write_mode = rule.and_then(|r| r.write_mode).unwrap_or(self.write_mode);
        let prepare = rule.and_then(|r| r.prepare).unwrap_or(self.prepare);
        let mut columns = Vec::with_capacity(schema.columns.len());
        let mut key = Vec::with_capacity(schema.primary_key.len());
        for (i, col) in schema.columns.iter().enumerate() {
            let is_key = schema.primary_key.contains(&(i as u32));
            if rule.is_some_and(|r| r.exclude_columns.contains(&col.name)) {
                if is_key {
                    return Err(SinkError::config(
                        format!("tables[{}].exclude_columns", schema.table),
                        format!("{:?} is a key column and cannot be excluded", col.name),
                    ));
                }
                continue;
            }
            let name = rule
                .and_then(|r| r.rename_columns.get(&col.name))
                .cloned()
                .unwrap_or_else(|| col.name.clone());
            if columns.iter().any(|c: &TargetColumn| c.name == name) {
                return Err(SinkError::config(
                    format!("tables[{}].rename_columns", schema.table),
                    format!("two columns map to {name:?}"),
                ));
            }
            columns.push(TargetColumn {
                name,
                source_index: i,
                source: col.clone(),
                type_override: rule.and_then(|r| r.type_overrides.get(&col.name)).cloned(),
            });
        }
        for &k in &schema.primary_key {
            if let Some(pos) = columns.iter().position(|c| c.source_index == k as usize) {
                key.push(pos);
            }
        }
        let name = rule
            .and_then(|r| r.target.clone())
            .unwrap_or_else(|| schema.table.name.to_string());
        Ok(Some(TargetTable {
            source: schema.table.clone(),
            name,
            columns,
            key,
            write_mode,
            prepare,
        }))
    }
}

/// Matches `text` against a pattern where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::event::DataType;

    fn schema() -> TableSchema {
        let col = |n: &str| Column {
            name: n.into(),
            data_type: DataType::Int {
                bits: 32,
                signed: true,
            },
            source_type: "int".into(),
            nullable: true,
        };
        TableSchema {
            table: TableName::new("app", "users"),
            columns: vec![col("id"), col("secret"), col("name")],
            primary_key: vec![0],
        }
    }

    #[test]
    fn glob_star_matches_any_run() {
        assert!(glob("app.*", "app.users"));
        assert!(glob("*.u*s", "app.users"));
        assert!(!glob("app.user", "app.users"));
        assert!(glob("*", ""));
    }

    #[test]
    fn exclude_filter_wins_over_include() {
        let m = TableMapping {
            include: vec!["app.*".into()],
            exclude: vec!["app.users".into()],
            ..Default::default()
        };
        assert!(m.resolve(&schema()).unwrap().is_none());
        assert!(m.includes(&TableName::new("app", "orders")));
        assert!(!m.includes(&TableName::new("other", "orders")));
    }

    #[test]
    fn renames_exclusions_and_overrides_resolve_to_target_columns() {
        let m = TableMapping {
            tables: vec![TableRule {
                schema: "app".into(),
                table: "users".into(),
                target: Some("people".into()),
                rename_columns: [("name".to_string(), "full name".to_string())].into(),
                exclude_columns: vec!["secret".into()],
                type_overrides: [("name".to_string(), "TEXT".to_string())].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        m.validate().unwrap();
        let t = m.resolve(&schema()).unwrap().unwrap();
        assert_eq!(t.name, "people");
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "full name"]);
        assert_eq!(t.columns[1].source_index, 2);
        assert_eq!(t.columns[1].type_override.as_deref(), Some("TEXT"));
        assert_eq!(t.key, [0]);
        let renames = m.column_renames(&TableName::new("app", "users"));
        assert_eq!(renames.get("name").map(String::as_str), Some("full name"));
        assert!(
            m.column_renames(&TableName::new("app", "orders"))
                .is_empty()
        );
    }

    #[test]
    fn excluding_a_key_column_is_rejected() {
        let m = TableMapping {
            tables: vec![TableRule {
                schema: "app".into(),
                table: "users".into(),
                exclude_columns: vec!["id".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(m.resolve(&schema()).is_err());
    }

    #[test]
    fn type_override_with_sql_punctuation_is_rejected() {
        let m = TableMapping {
            tables: vec![TableRule {
                schema: "app".into(),
                table: "users".into(),
                type_overrides: [("name".to_string(), "TEXT; DROP".to_string())].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(m.validate().is_err());
    }
}
