//! Runnable examples live in `examples/examples/`; this holds what several
//! of them share: reading the demo table `accounts` back from the source and
//! from a SQLite target, in one comparable form.

use std::path::Path;

use cdc_testkit::Postgres;

/// What the helpers return on failure.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The source's `public.accounts` as `id|owner|balance` lines in key order.
pub fn source_rows(pg: &Postgres) -> Result<Vec<String>, Error> {
    let out = pg.sql("SELECT id, owner, balance::text FROM public.accounts ORDER BY id")?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// A SQLite target's `accounts` in the same form; empty before a pipeline
/// created the table.
pub fn target_rows(path: &Path) -> Result<Vec<String>, Error> {
    sqlite_rows(path, "owner")
}

/// The same, from a target whose mapping renamed `owner` to `holder`.
pub fn renamed_target_rows(path: &Path) -> Result<Vec<String>, Error> {
    sqlite_rows(path, "holder")
}

fn sqlite_rows(path: &Path, owner_column: &str) -> Result<Vec<String>, Error> {
    let db = rusqlite::Connection::open(path)?;
    let query = format!(
        "SELECT id, \"{owner_column}\", CAST(balance AS TEXT) FROM \"accounts\" ORDER BY id"
    );
    let mut statement = match db.prepare(&query) {
        Ok(statement) => statement,
        Err(_) => return Ok(Vec::new()),
    };
    let rows = statement.query_map([], |row| {
        Ok(format!(
            "{}|{}|{}",
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
