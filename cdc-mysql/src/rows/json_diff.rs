//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): in a
//! PARTIAL_UPDATE_ROWS event the after image of a JSON column may be a list of
//! diffs against the before image instead of the document. Applying them to
//! the before image's document gives the after image a full update would have
//! carried, as the same text.
//!
//! A diff is an operation byte (0 replace, 1 insert, 2 remove), the path as
//! length-encoded text (`$.a[2]."b c"`), and for replace and insert the new
//! value as length-encoded binary JSON. A diff that does not fit the before
//! image is an error, never a guess.

use super::json;
use super::json_tree::{self, Node, err, quoted};
use crate::binlog::cursor::{Cursor, Decoded};

const REPLACE: u8 = 0;
const INSERT: u8 = 1;
const REMOVE: u8 = 2;

/// Applies the binary diffs of one column to `before`, the JSON text of the
/// column's before image, and returns the after image's JSON text.
pub fn apply(before: &str, diffs: &[u8]) -> Decoded<String> {
    let mut doc = json_tree::parse(before)?;
    let mut c = Cursor::new(diffs);
    while !c.is_empty() {
        let op = c.u8()?;
        if op > REMOVE {
            return Err(err(&format!("unknown operation {op}")));
        }
        let path = std::str::from_utf8(c.lenenc_bytes()?).map_err(|_| err("path not UTF-8"))?;
        let legs = parse_path(path)?;
        let value = if op == REMOVE {
            None
        } else {
            let text = json::to_text(c.lenenc_bytes()?)?;
            Some(json_tree::parse(&text)?)
        };
        apply_one(&mut doc, op, &legs, value).map_err(err)?;
    }
    let mut out = String::with_capacity(before.len());
    doc.write(&mut out);
    Ok(out)
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Member(String),
    /// `[n]`: the n-th element.
    Index(usize),
    /// `[last]` or `[last-n]`: the n-th element from the end.
    FromEnd(usize),
}

impl Leg {
    /// The element this leg names in an array of `len`, if there is one.
    fn resolve(&self, len: usize) -> Option<usize> {
        match *self {
            Leg::Index(n) => (n < len).then_some(n),
            Leg::FromEnd(n) => len.checked_sub(n + 1),
            Leg::Member(_) => None,
        }
    }
}

/// Parses a path as MySQL prints it: `$`, then `.key`, `."quoted key"`,
/// `[n]`, `[last]` or `[last-n]`. Wildcards and ranges name no single value
/// and never appear in a diff; they are errors.
fn parse_path(path: &str) -> Decoded<Vec<Leg>> {
    let mut rest = path
        .trim_start()
        .strip_prefix('$')
        .ok_or_else(|| err("path does not start with $"))?;
    let mut legs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(legs);
        }
        if let Some(member) = rest.strip_prefix('.') {
            let member = member.trim_start();
            if member.starts_with('"') {
                let (text, end) = quoted(member, 0)?;
                legs.push(Leg::Member(
                    serde_json::from_str(text).map_err(|_| err("malformed path"))?,
                ));
                rest = &member[end..];
            } else {
                let end = member
                    .find(|ch: char| ch == '.' || ch == '[' || ch.is_whitespace())
                    .unwrap_or(member.len());
                let name = &member[..end];
                if name.is_empty() || name.contains('*') {
                    return Err(err("path names no single member"));
                }
                legs.push(Leg::Member(name.to_owned()));
                rest = &member[end..];
            }
        } else if let Some(cell) = rest.strip_prefix('[') {
            let end = cell.find(']').ok_or_else(|| err("malformed path"))?;
            legs.push(parse_cell(cell[..end].trim())?);
            rest = &cell[end + 1..];
        } else {
            return Err(err("path names no single value"));
        }
    }
}

fn parse_cell(cell: &str) -> Decoded<Leg> {
    let number = |text: &str| {
        text.trim()
            .parse::<usize>()
            .map_err(|_| err("path names no single array element"))
    };
    match cell.strip_prefix("last") {
        Some("") => Ok(Leg::FromEnd(0)),
        Some(back) => {
            let back = back
                .trim_start()
                .strip_prefix('-')
                .ok_or_else(|| err("path names no single array element"))?;
            Ok(Leg::FromEnd(number(back)?))
        }
        None => Ok(Leg::Index(number(cell)?)),
    }
}

/// Orders object keys as MySQL stores them: by length, then by bytes.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The value `legs` name inside `node`. An index leg that names the first
/// element of a non-array names the value itself, as MySQL's paths do.
fn seek<'n>(node: &'n mut Node, legs: &[Leg]) -> Result<&'n mut Node, &'static str> {
    let mut node = node;
    for leg in legs {
        node = match (node, leg) {
            (Node::Object(members), Leg::Member(key)) => members
                .iter_mut()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .ok_or("the path names a member the before image lacks")?,
            (Node::Array(items), leg) => leg
                .resolve(items.len())
                .and_then(|i| items.get_mut(i))
                .ok_or("the path names an element the before image lacks")?,
            (scalar_or_object, leg) if leg.resolve(1) == Some(0) => scalar_or_object,
            _ => return Err("the path does not fit the before image"),
        };
    }
    Ok(node)
}

fn apply_one(
    doc: &mut Node,
    op: u8,
    legs: &[Leg],
    value: Option<Node>,
) -> Result<(), &'static str> {
    let Some((last, parents)) = legs.split_last() else {
        return match (op, value) {
            (REPLACE, Some(value)) => {
                *doc = value;
                Ok(())
            }
            _ => Err("only a replace may name the whole document"),
        };
    };
    let parent = seek(doc, parents)?;
    match (op, value) {
        (REPLACE, Some(value)) => {
            *seek(parent, std::slice::from_ref(last))? = value;
            Ok(())
        }
        (INSERT, Some(value)) => insert(parent, last, value),
        (REMOVE, None) => remove(parent, last),
        _ => Err("operation and value do not match"),
    }
}

fn insert(parent: &mut Node, leg: &Leg, value: Node) -> Result<(), &'static str> {
    match (parent, leg) {
        (Node::Object(members), Leg::Member(key)) => {
            match members.iter_mut().find(|(k, _)| k == key) {
                Some((_, existing)) => *existing = value,
                None => {
                    let at = members.partition_point(|(k, _)| key_order(k, key).is_lt());
                    members.insert(at, (key.clone(), value));
                }
            }
            Ok(())
        }
        (Node::Array(items), Leg::Index(n)) => {
            items.insert((*n).min(items.len()), value);
            Ok(())
        }
        (Node::Array(items), Leg::FromEnd(n)) => {
            items.insert(items.len().saturating_sub(n + 1), value);
            Ok(())
        }
        // An element added after a non-array wraps it in an array first.
        (other, Leg::Index(n)) if *n > 0 => {
            let first = std::mem::replace(other, Node::Array(Vec::new()));
            *other = Node::Array(vec![first, value]);
            Ok(())
        }
        _ => Err("the inserted path does not fit the before image"),
    }
}

fn remove(parent: &mut Node, leg: &Leg) -> Result<(), &'static str> {
    let removed = match (parent, leg) {
        (Node::Object(members), Leg::Member(key)) => {
            let at = members.iter().position(|(k, _)| k == key);
            at.map(|i| members.remove(i).1)
        }
        (Node::Array(items), leg) => leg.resolve(items.len()).map(|i| items.remove(i)),
        _ => None,
    };
    removed
        .map(|_| ())
        .ok_or("the removed path is not in the before image")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::writer::{json_diff, json_string as string};

    /// Binary JSON of an int16 scalar.
    fn int(v: i16) -> Vec<u8> {
        let mut out = vec![0x05];
        out.extend_from_slice(&v.to_le_bytes());
        out
    }

    fn diff(op: u8, path: &str, value: Option<Vec<u8>>) -> Vec<u8> {
        json_diff(op, path, value.as_deref())
    }

    fn run(before: &str, diffs: &[Vec<u8>]) -> Decoded<String> {
        apply(before, &diffs.concat())
    }

    #[test]
    fn replace_insert_and_remove_members_keep_mysql_key_order() {
        let before = r#"{"a":"hulu","b":"[zyzzy]","c":"bulu"}"#;
        let got = run(before, &[diff(REPLACE, "$.b", Some(string("oOo")))]).unwrap();
        assert_eq!(got, r#"{"a":"hulu","b":"oOo","c":"bulu"}"#);
        let got = run(
            before,
            &[
                diff(INSERT, "$.bb", Some(int(7))),
                diff(INSERT, "$.\"a b\"", Some(int(-1))),
                diff(REMOVE, "$.a", None),
            ],
        )
        .unwrap();
        // Shorter keys first, then bytewise: "b", "c", "a b", "bb".
        assert_eq!(got, r#"{"b":"[zyzzy]","c":"bulu","bb":7,"a b":-1}"#);
    }

    #[test]
    fn array_elements_are_named_from_the_start_or_the_end() {
        let before = r#"{"xs":[1,2.50,3],"n":{"deep":[true,null]}}"#;
        let got = run(
            before,
            &[
                diff(REPLACE, "$.xs[last]", Some(int(30))),
                diff(INSERT, "$.xs[9]", Some(int(4))),
                diff(REMOVE, "$.xs[0]", None),
                diff(REPLACE, "$.n.deep[last-1]", Some(string("t"))),
            ],
        )
        .unwrap();
        // Exact number text survives (2.50 is not rewritten as 2.5).
        assert_eq!(got, r#"{"xs":[2.50,30,4],"n":{"deep":["t",null]}}"#);
    }

    #[test]
    fn a_scalar_is_its_own_first_element_and_wraps_on_insert() {
        let before = r#"{"a":1}"#;
        let got = run(before, &[diff(REPLACE, "$.a[0]", Some(int(2)))]).unwrap();
        assert_eq!(got, r#"{"a":2}"#);
        let got = run(before, &[diff(INSERT, "$.a[1]", Some(int(2)))]).unwrap();
        assert_eq!(got, r#"{"a":[1,2]}"#);
        let got = run("[1]", &[diff(REPLACE, "$", Some(string("x")))]).unwrap();
        assert_eq!(got, r#""x""#);
    }

    #[test]
    fn diffs_that_do_not_fit_the_before_image_are_errors() {
        let before = r#"{"a":[1]}"#;
        for bad in [
            diff(REPLACE, "$.missing", Some(int(1))),
            diff(REMOVE, "$.a[3]", None),
            diff(REMOVE, "$", None),
            diff(REPLACE, "$.a[*]", Some(int(1))),
            diff(REPLACE, "$**.a", Some(int(1))),
            diff(REPLACE, "a", Some(int(1))),
            diff(7, "$.a", None),
        ] {
            let e = run(before, std::slice::from_ref(&bad)).unwrap_err();
            assert!(
                e.0.starts_with("partial JSON update: "),
                "{e:?} for {bad:?}"
            );
        }
        // Truncated: a replace without its value, a value cut short.
        assert!(run(before, &[diff(REPLACE, "$.a", None)]).is_err());
        assert!(run(before, &[diff(REPLACE, "$.a", Some(int(1)))[..6].to_vec()]).is_err());
        assert!(run("{\"a\":", &[]).is_err());
    }
}
