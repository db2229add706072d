//! The little SQL reading the decoder needs from QUERY events: the statement's
//! first word (BEGIN, COMMIT, DDL) and the table of a TRUNCATE.

use cdc_core::event::TableName;

/// The statement's first keyword, upper-cased, after comments.
pub fn first_word(sql: &str) -> String {
    let trimmed = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let trimmed = strip_comments(trimmed);
    trimmed
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn strip_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start();
        if let Some(rest) = sql.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => sql = &rest[end + 2..],
                None => return "",
            }
        } else if sql.starts_with("--") || sql.starts_with('#') {
            match sql.find('\n') {
                Some(end) => sql = &sql[end + 1..],
                None => return "",
            }
        } else {
            return sql;
        }
    }
}

/// The table of `TRUNCATE [TABLE] [db.]name`.
pub fn truncated_table(sql: &str, default_schema: &str) -> Option<TableName> {
    let sql = strip_comments(sql);
    let mut words = sql.split_whitespace().skip(1);
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("TABLE") {
        name = words.next()?;
    }
    let name = name.trim_end_matches(';');
    let parts: Vec<String> = split_ident(name);
    match parts.as_slice() {
        [t] => Some(TableName::new(default_schema, t.clone())),
        [s, t] => Some(TableName::new(s.clone(), t.clone())),
        _ => None,
    }
}

fn split_ident(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '`' if quoted && chars.peek() == Some(&'`') => {
                cur.push('`');
                chars.next();
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_words_skip_comments() {
        assert_eq!(first_word("/* x */ ALTER TABLE t"), "ALTER");
        assert_eq!(first_word("BEGIN"), "BEGIN");
        assert_eq!(first_word("-- c\ncommit"), "COMMIT");
    }

    #[test]
    fn truncate_names_its_table_with_quotes() {
        assert_eq!(
            truncated_table("TRUNCATE TABLE `a``b`.`t.1`", "d"),
            Some(TableName::new("a`b", "t.1"))
        );
        assert_eq!(
            truncated_table("truncate t", "d"),
            Some(TableName::new("d", "t"))
        );
    }
}
