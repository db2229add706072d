//! The little SQL reading the decoder needs from QUERY events: the statement's
//! first word (BEGIN, COMMIT, DDL), the table of a TRUNCATE and the verb and
//! XID of an XA statement.

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

/// What an XA statement in the binlog does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Xa {
    /// `XA COMMIT xid` of a transaction prepared earlier; the XID in the
    /// form of [`xid_text`].
    Commit(String),
    /// `XA ROLLBACK xid` of a transaction prepared earlier.
    Rollback(String),
    /// `XA START`, `XA END`, `XA COMMIT ... ONE PHASE` (which has no prepare)
    /// and the rest: nothing to do.
    Other,
}

/// Reads an XA statement. The server writes the XID as `X'gtrid',X'bqual',format`
/// in hexadecimal, whatever form the client used.
pub fn xa_statement(sql: &str) -> Option<Xa> {
    let sql = strip_comments(sql).trim().trim_end_matches(';').trim_end();
    let (word, rest) = sql.split_once(char::is_whitespace)?;
    if !word.eq_ignore_ascii_case("XA") {
        return None;
    }
    let rest = rest.trim_start();
    let (verb, xid) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let xid = xid.trim();
    let one_phase = xid.to_ascii_uppercase().ends_with("ONE PHASE");
    Some(match verb.to_ascii_uppercase().as_str() {
        "COMMIT" if !one_phase => Xa::Commit(normalized_xid(xid)),
        "ROLLBACK" => Xa::Rollback(normalized_xid(xid)),
        _ => Xa::Other,
    })
}

/// An XID as one text: `X'gtrid',X'bqual',format` with lower-case hex digits.
pub fn xid_text(format_id: i64, gtrid: &[u8], bqual: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("X'{}',X'{}',{format_id}", hex(gtrid), hex(bqual))
}

/// The XID of a statement in [`xid_text`] form; text in another form is
/// kept as written.
fn normalized_xid(xid: &str) -> String {
    let parts: Vec<&str> = xid.split(',').map(str::trim).collect();
    let hex = |p: &str| -> Option<Vec<u8>> {
        let digits = p
            .strip_prefix(['X', 'x'])?
            .strip_prefix('\'')?
            .strip_suffix('\'')?;
        if !digits.len().is_multiple_of(2) {
            return None;
        }
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
            .collect()
    };
    let parsed = match parts.as_slice() {
        [g, b, f] => hex(g).zip(hex(b)).zip(f.parse::<i64>().ok()),
        _ => None,
    };
    match parsed {
        Some(((gtrid, bqual), format_id)) => xid_text(format_id, &gtrid, &bqual),
        None => xid.to_owned(),
    }
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

    #[test]
    fn xa_statements_name_the_xid_in_one_form() {
        let xid = "X'7a31',X'',1";
        assert_eq!(xid_text(1, b"z1", b""), xid);
        assert_eq!(
            xa_statement("XA COMMIT X'7A31',X'',1"),
            Some(Xa::Commit(xid.into()))
        );
        assert_eq!(
            xa_statement("xa rollback X'7a31' , X'' , 1;"),
            Some(Xa::Rollback(xid.into()))
        );
        assert_eq!(xa_statement("XA COMMIT 'a' ONE PHASE"), Some(Xa::Other));
        assert_eq!(xa_statement("XA START X'7a31',X'',1"), Some(Xa::Other));
        assert_eq!(
            xa_statement("XA COMMIT 'a'"),
            Some(Xa::Commit("'a'".into()))
        );
        assert_eq!(xa_statement("XACT"), None);
        assert_eq!(xa_statement("INSERT INTO xa VALUES (1)"), None);
    }
}
