//! Column types the binlog does not name (MariaDB `UUID`, `INET6`, `INET4`,
//! `JSON`), read from the server's catalog when a table's schema is built.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::{Error, Result};
use crate::rows::column::TypeHint;

/// Type hints of one table's columns.
pub async fn type_hints(
    conn: &mut Conn,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, TypeHint)>> {
    let columns: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )
        .await
        .map_err(|e| Error::mysql("reading column types", e))?;
    let mut hints: Vec<(String, TypeHint)> = columns
        .into_iter()
        .filter_map(|(name, ty)| {
            let hint = match ty.as_str() {
                "uuid" => TypeHint::Uuid,
                "inet6" => TypeHint::Inet6,
                "inet4" => TypeHint::Inet4,
                "json" => TypeHint::Json,
                _ => return None,
            };
            Some((name, hint))
        })
        .collect();
    // MariaDB's JSON is LONGTEXT with a json_valid() check constraint.
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )
        .await
        .unwrap_or_default();
    for clause in checks {
        if let Some(rest) = clause.trim().strip_prefix("json_valid(`")
            && let Some(name) = rest.strip_suffix("`)")
        {
            hints.push((name.replace("``", "`"), TypeHint::Json));
        }
    }
    Ok(hints)
}
