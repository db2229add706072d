use std::fmt;

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

use super::SharedStr;

/// An exact decimal number kept as its canonical text, so no precision is lost
/// whatever the source's precision (PostgreSQL `numeric` has up to 131072 digits
/// before the point). Text of up to 23 bytes (any MySQL `DECIMAL(21,x)` and
/// most PostgreSQL numerics) is kept inside the value, with no heap allocation
/// (see [`SharedStr`]).
///
/// Accepted forms: an optional `-` or `+`, digits, optionally `.` and more digits
/// (`"-12.3400"`, `".5"` is rejected, `"0.5"` is fine), or one of the special
/// values `NaN`, `Infinity`, `-Infinity` (PostgreSQL numeric). Trailing zeros are
/// kept: they carry the source's scale.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Clone, PartialEq, Eq, Hash,
)]
#[rkyv(derive(Debug))]
#[serde(try_from = "String", into = "String")]
pub struct Decimal(SharedStr);

/// The text given to [`Decimal::parse`] is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an exact decimal number (expected digits with an optional sign and point, or NaN/Infinity)"
)]
pub struct DecimalError;

impl Decimal {
    /// Parses and validates decimal text; a leading `+` is dropped.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        if matches!(text, "NaN" | "Infinity" | "-Infinity") {
            return Ok(Self(SharedStr::from(text)));
        }
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(DecimalError);
        }
        Ok(Self(SharedStr::from(
            text.strip_prefix('+').unwrap_or(text),
        )))
    }

    /// The canonical text, e.g. `"-12.3400"` or `"NaN"`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether this is `NaN`, `Infinity` or `-Infinity`.
    pub fn is_special(&self) -> bool {
        matches!(self.as_str(), "NaN" | "Infinity" | "-Infinity")
    }
}

impl ArchivedDecimal {
    /// The canonical text of the archived decimal.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.as_str())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Decimal {
    type Error = DecimalError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Decimal> for String {
    fn from(d: Decimal) -> Self {
        d.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_text_with_trailing_zeros_is_kept() {
        assert_eq!(Decimal::parse("-12.3400").unwrap().as_str(), "-12.3400");
        assert_eq!(Decimal::parse("+7").unwrap().as_str(), "7");
        assert_eq!(
            Decimal::parse("123456789012345678901234567890.000000001")
                .unwrap()
                .as_str(),
            "123456789012345678901234567890.000000001"
        );
    }

    #[test]
    fn special_values_are_accepted_and_flagged() {
        for s in ["NaN", "Infinity", "-Infinity"] {
            assert!(Decimal::parse(s).unwrap().is_special());
        }
    }

    #[test]
    fn malformed_text_is_rejected() {
        for s in [
            "", "-", ".5", "5.", "1e5", "1.2.3", "abc", " 1", "--1", "nan",
        ] {
            assert_eq!(Decimal::parse(s), Err(DecimalError), "{s:?}");
        }
    }
}
