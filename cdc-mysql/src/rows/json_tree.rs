//! JSON documents as trees for partial JSON updates ([`super::json_diff`]):
//! JSON text parsed with every scalar kept as its exact text, and written back
//! in the decoder's compact form.

use super::json;
use crate::binlog::cursor::{DecodeError, Decoded};

/// An error of a partial JSON update, which names no path or value.
pub(super) fn err(reason: &str) -> DecodeError {
    // Paths and values are the user's data: they stay out of the message.
    DecodeError::new(format!("partial JSON update: {reason}"))
}

/// A JSON document whose scalars keep their exact text (numbers included).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Scalar(String),
    Array(Vec<Node>),
    /// Members in document order; MySQL keeps them sorted by key length, then bytes.
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Writes the document as compact JSON text, as the decoder does.
    pub(super) fn write(&self, out: &mut String) {
        match self {
            Node::Scalar(text) => out.push_str(text),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json::push_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Parses JSON text, the decoder's own output, into a [`Node`].
pub(super) fn parse(text: &str) -> Decoded<Node> {
    Parser { text, at: 0 }.document()
}

/// Reads JSON text into a [`Node`].
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Decoded<Node> {
        let node = self.value(0)?;
        self.skip_space();
        if self.at != self.text.len() {
            return Err(err("trailing text after the document"));
        }
        Ok(node)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Decoded<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(err("malformed JSON document"))
        }
    }

    fn value(&mut self, depth: usize) -> Decoded<Node> {
        if depth > json::MAX_DEPTH {
            return Err(err("nesting too deep"));
        }
        self.skip_space();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Ok(Node::Object(members));
                }
                loop {
                    self.skip_space();
                    let key = serde_json::from_str(self.string()?)
                        .map_err(|_| err("malformed object key"))?;
                    self.expect(b':')?;
                    members.push((key, self.value(depth + 1)?));
                    if !self.eat(b',') {
                        self.expect(b'}')?;
                        return Ok(Node::Object(members));
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Node::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        self.expect(b']')?;
                        return Ok(Node::Array(items));
                    }
                }
            }
            Some(b'"') => Ok(Node::Scalar(self.string()?.to_owned())),
            Some(_) => {
                let start = self.at;
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b':') && !b.is_ascii_whitespace()
                }) {
                    self.at += 1;
                }
                let token = &self.text[start..self.at];
                if token.is_empty() {
                    return Err(err("malformed JSON document"));
                }
                Ok(Node::Scalar(token.to_owned()))
            }
            None => Err(err("JSON document ends early")),
        }
    }

    /// The quoted string at the cursor, quotes and escapes kept.
    fn string(&mut self) -> Decoded<&'a str> {
        let (text, end) = quoted(self.text, self.at)?;
        self.at = end;
        Ok(text)
    }
}

/// The quoted string starting at byte `start` of `text` (which must be `"`),
/// with its quotes and escapes, and the byte offset after it.
pub(super) fn quoted(text: &str, start: usize) -> Decoded<(&str, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'"') {
        return Err(err("expected a quoted string"));
    }
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Ok((&text[start..=i], i + 1)),
            _ => i += 1,
        }
    }
    Err(err("unterminated string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_text_round_trips_exactly() {
        for text in [
            r#"{"a":[1,-2.50,1e300,true,null],"k\"ey":"\u00e9\n","é":{}}"#,
            "[]",
            r#""x""#,
            "12345678901234567890",
        ] {
            let mut out = String::new();
            parse(text).unwrap().write(&mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn malformed_text_is_an_error() {
        for text in [
            "",
            "{",
            r#"{"a"}"#,
            "[1,]",
            r#"{"a":1}x"#,
            r#""open"#,
            "{1:2}",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        let deep = "[".repeat(json::MAX_DEPTH + 2) + &"]".repeat(json::MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
    }
}
