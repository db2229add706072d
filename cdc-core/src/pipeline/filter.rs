//! Which tables a pipeline delivers.

use serde::{Deserialize, Serialize};

use crate::event::TableName;

/// One table, or every table of a schema (PostgreSQL schema, MySQL database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablePattern {
    /// The schema (namespace) to match exactly.
    pub schema: String,
    /// The table to match exactly; `None` matches every table of `schema`.
    #[serde(default)]
    pub table: Option<String>,
}

impl TablePattern {
    /// Matches exactly one table.
    pub fn table(name: &TableName) -> Self {
        Self {
            schema: name.schema.to_string(),
            table: Some(name.name.to_string()),
        }
    }

    /// Matches every table of `schema`.
    pub fn schema(schema: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: None,
        }
    }

    /// Whether `name` matches this pattern.
    pub fn matches(&self, name: &TableName) -> bool {
        self.matches_parts(&name.schema, &name.name)
    }

    fn matches_parts(&self, schema: &str, name: &str) -> bool {
        self.schema == schema && self.table.as_deref().is_none_or(|t| t == name)
    }
}

/// Include and exclude lists of tables. A table passes when `include` is empty or
/// one of its patterns matches, and no `exclude` pattern matches (exclude wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFilter {
    /// Tables to deliver. Default: empty, meaning every table.
    #[serde(default)]
    pub include: Vec<TablePattern>,
    /// Tables never to deliver, even if included. Default: empty.
    #[serde(default)]
    pub exclude: Vec<TablePattern>,
}

impl TableFilter {
    /// A filter that passes every table.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds an include pattern.
    pub fn include(mut self, pattern: TablePattern) -> Self {
        self.include.push(pattern);
        self
    }

    /// Adds an exclude pattern.
    pub fn exclude(mut self, pattern: TablePattern) -> Self {
        self.exclude.push(pattern);
        self
    }

    /// Whether changes of `name` are delivered.
    pub fn allows(&self, name: &TableName) -> bool {
        self.allows_parts(&name.schema, &name.name)
    }

    /// [`allows`](Self::allows) on the two parts of a name, so an archived record
    /// can be judged without deserializing it.
    pub(crate) fn allows_parts(&self, schema: &str, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches_parts(schema, name)))
            && !self.exclude.iter().any(|p| p.matches_parts(schema, name))
    }

    /// Checks that no pattern has an empty schema or table name.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for p in self.include.iter().chain(&self.exclude) {
            if p.schema.is_empty() || p.table.as_deref() == Some("") {
                return Err(format!("pattern {p:?} has an empty name"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(schema: &str, name: &str) -> TableName {
        TableName::new(schema, name)
    }

    #[test]
    fn empty_filter_passes_every_table() {
        assert!(TableFilter::all().allows(&t("public", "a")));
    }

    #[test]
    fn include_limits_to_exact_tables_and_whole_schemas() {
        let f = TableFilter::all()
            .include(TablePattern::table(&t("public", "a")))
            .include(TablePattern::schema("audit"));
        assert!(f.allows(&t("public", "a")));
        assert!(!f.allows(&t("public", "b")));
        assert!(f.allows(&t("audit", "anything")));
        assert!(!f.allows(&t("Audit", "anything")));
    }

    #[test]
    fn exclude_wins_over_include() {
        let f = TableFilter::all()
            .include(TablePattern::schema("public"))
            .exclude(TablePattern::table(&t("public", "secret")));
        assert!(f.allows(&t("public", "a")));
        assert!(!f.allows(&t("public", "secret")));
    }

    #[test]
    fn patterns_deserialize_and_reject_unknown_fields() {
        let f: TableFilter = serde_json::from_str(
            r#"{"include":[{"schema":"public","table":"a"},{"schema":"audit"}]}"#,
        )
        .unwrap();
        assert_eq!(f.include[1], TablePattern::schema("audit"));
        assert!(
            serde_json::from_str::<TableFilter>(r#"{"include":[{"schema":"x","tbl":"a"}]}"#)
                .is_err()
        );
    }
}
