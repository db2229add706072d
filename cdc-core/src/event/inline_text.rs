//! Short immutable text kept inside the value itself: a decimal's digits fit in
//! the 24 bytes a `String` takes, so decoding one costs no heap allocation.

use std::hash::{Hash, Hasher};

use super::archive_text::archive_as_string;

/// Longest text kept inline.
const INLINE: usize = 22;

/// Text of up to [`INLINE`] bytes stored in place, longer text on the heap.
/// Archived exactly like a `String`.
#[derive(Clone)]
pub(crate) enum InlineText {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl InlineText {
    pub(crate) fn new(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            InlineText::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            InlineText::Heap(text.into())
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Built from a `&str` cut at its end, so always valid UTF-8.
            InlineText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            InlineText::Heap(text) => text,
        }
    }
}

impl std::fmt::Debug for InlineText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for InlineText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for InlineText {}

impl Hash for InlineText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

archive_as_string!(InlineText, InlineText::new);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::archive_text::round_trip_as_string;

    #[test]
    fn short_and_long_text_round_trip_and_archive_like_a_string() {
        for text in [
            "",
            "-12.34",
            "1234567890123456789012",
            "12345678901234567890123",
        ] {
            let inline = InlineText::new(text);
            assert_eq!(inline.as_str(), text);
            assert_eq!(
                matches!(inline, InlineText::Inline { .. }),
                text.len() <= INLINE
            );
            assert_eq!(round_trip_as_string(&inline, text), inline);
        }
    }

    #[test]
    fn takes_no_more_room_than_a_string() {
        assert_eq!(size_of::<InlineText>(), size_of::<String>());
    }
}
