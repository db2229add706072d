//! Identifier quoting per SQL dialect. Every identifier the sinks put into SQL
//! goes through here, so hostile names (quotes, backticks, spaces, unicode) are
//! plain names to the server.

/// The SQL dialect of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: `"name"`, with `"` doubled.
    Postgres,
    /// MySQL and MariaDB: `` `name` ``, with `` ` `` doubled.
    MySql,
    /// SQLite: `"name"`, with `"` doubled.
    Sqlite,
}

impl Dialect {
    /// Quotes one identifier.
    pub fn ident(self, name: &str) -> String {
        let q = match self {
            Dialect::Postgres | Dialect::Sqlite => '"',
            Dialect::MySql => '`',
        };
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        out
    }

    /// Quotes a qualified name (`schema` may be empty for the default namespace).
    pub fn qualified(self, schema: &str, name: &str) -> String {
        if schema.is_empty() {
            self.ident(name)
        } else {
            format!("{}.{}", self.ident(schema), self.ident(name))
        }
    }

    /// Quotes and joins identifiers with `, `.
    pub fn list<'a>(self, names: impl IntoIterator<Item = &'a str>) -> String {
        names
            .into_iter()
            .map(|n| self.ident(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_characters_inside_names_are_doubled() {
        assert_eq!(Dialect::Postgres.ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(Dialect::MySql.ident("a`b"), "`a``b`");
        assert_eq!(Dialect::Sqlite.ident("ta ble ü"), "\"ta ble ü\"");
    }

    #[test]
    fn qualified_names_quote_each_part() {
        assert_eq!(Dialect::Postgres.qualified("s.x", "t"), r#""s.x"."t""#);
        assert_eq!(Dialect::MySql.qualified("", "t"), "`t`");
    }
}
