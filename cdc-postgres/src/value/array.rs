//! PostgreSQL array text form (`{1,2,NULL,"a \"b\""}`, nested, optional
//! `[lo:hi]=` bounds) to element texts.

/// One element of a parsed array: a nested array, NULL, or an element's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Element {
    /// SQL NULL.
    Null,
    /// The element's text with quoting and escapes removed.
    Text(String),
    /// A nested dimension.
    Nested(Vec<Element>),
}

/// Parses an array literal; `None` when it is malformed.
pub(crate) fn parse(text: &str, delimiter: u8) -> Option<Vec<Element>> {
    let body = if text.starts_with('[') {
        // Dimension decoration for arrays with lower bounds other than 1.
        &text[text.find('=')? + 1..]
    } else {
        text
    };
    let bytes = body.as_bytes();
    let mut pos = 0;
    let out = dimension(bytes, &mut pos, delimiter, 0)?;
    (pos == bytes.len()).then_some(out)
}

const MAX_DEPTH: usize = 6;

fn dimension(b: &[u8], pos: &mut usize, delim: u8, depth: usize) -> Option<Vec<Element>> {
    if depth > MAX_DEPTH || b.get(*pos) != Some(&b'{') {
        return None;
    }
    *pos += 1;
    let mut out = Vec::new();
    if b.get(*pos) == Some(&b'}') {
        *pos += 1;
        return Some(out);
    }
    loop {
        match b.get(*pos)? {
            b'{' => out.push(Element::Nested(dimension(b, pos, delim, depth + 1)?)),
            b'"' => out.push(Element::Text(quoted(b, pos)?)),
            _ => {
                let start = *pos;
                while let Some(&c) = b.get(*pos) {
                    if c == delim || c == b'}' {
                        break;
                    }
                    *pos += 1;
                }
                let raw = std::str::from_utf8(b.get(start..*pos)?).ok()?;
                if raw.is_empty() {
                    return None;
                }
                out.push(if raw.eq_ignore_ascii_case("NULL") {
                    Element::Null
                } else {
                    Element::Text(raw.to_owned())
                });
            }
        }
        match b.get(*pos)? {
            c if *c == delim => *pos += 1,
            b'}' => {
                *pos += 1;
                return Some(out);
            }
            _ => return None,
        }
    }
}

fn quoted(b: &[u8], pos: &mut usize) -> Option<String> {
    *pos += 1;
    let mut out = Vec::new();
    loop {
        match *b.get(*pos)? {
            b'"' => {
                *pos += 1;
                return String::from_utf8(out).ok();
            }
            b'\\' => {
                out.push(*b.get(*pos + 1)?);
                *pos += 2;
            }
            c => {
                out.push(c);
                *pos += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Element {
        Element::Text(s.into())
    }

    #[test]
    fn quoted_elements_nulls_and_nesting_parse() {
        assert_eq!(
            parse(r#"{1,NULL,"a \"b\"","NULL"}"#, b','),
            Some(vec![t("1"), Element::Null, t("a \"b\""), t("NULL")])
        );
        assert_eq!(
            parse("{{1,2},{3,4}}", b','),
            Some(vec![
                Element::Nested(vec![t("1"), t("2")]),
                Element::Nested(vec![t("3"), t("4")])
            ])
        );
        assert_eq!(parse("[0:1]={7,8}", b','), Some(vec![t("7"), t("8")]));
        assert_eq!(parse("{}", b','), Some(vec![]));
    }

    #[test]
    fn malformed_arrays_are_rejected() {
        for s in ["", "{", "{1,", "{1}x", "{\"a}", "{,}", "1,2"] {
            assert_eq!(parse(s, b','), None, "{s:?}");
        }
    }
}
