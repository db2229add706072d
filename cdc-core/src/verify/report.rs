//! What a verification found, saved as its progress after every chunk.

use serde::{Deserialize, Serialize};

use crate::event::Row;

/// Differences of one kind: how many, and the first keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found<T> {
    /// How many were found.
    pub count: u64,
    /// The first ones, up to [`VerifyConfig::max_reported`](super::VerifyConfig::max_reported).
    pub first: Vec<T>,
}

impl<T> Default for Found<T> {
    fn default() -> Self {
        Self {
            count: 0,
            first: Vec::new(),
        }
    }
}

impl<T> Found<T> {
    pub(super) fn add(&mut self, item: T, max_reported: usize) {
        self.count += 1;
        if self.first.len() < max_reported {
            self.first.push(item);
        }
    }
}

/// A key both sides hold with different values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowDifference {
    /// The key's values, in key order.
    pub key: Row,
    /// The source names of the columns that differ.
    pub columns: Vec<String>,
}

/// What a verification found, and how far it came. Holds key values (never
/// other values): keep it where the source's keys may be kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Source rows compared in the range scan.
    pub rows: u64,
    /// Chunks compared.
    pub chunks: u64,
    /// Keys the source has and the sink lacks.
    pub missing: Found<Row>,
    /// Keys the sink has and the source lacks.
    pub extra: Found<Row>,
    /// Keys both have, with different values.
    pub different: Found<RowDifference>,
    /// Keys that changed every time they were compared: neither verified
    /// nor found different. Run again when the source is quieter.
    pub unsettled: Found<Row>,
    /// Whether the whole table was compared and every recheck made.
    pub done: bool,
    /// Where the next chunk starts; `None` before the first.
    pub(super) next: Option<Row>,
    /// Whether every chunk was compared.
    pub(super) scanned: bool,
    /// Keys to compare again, by key.
    pub(super) pending: Vec<Row>,
    /// Recheck rounds made.
    pub(super) rechecks: u32,
}

impl VerifyReport {
    /// Whether the comparison is complete and found the sink equal to the
    /// source.
    pub fn is_equal(&self) -> bool {
        self.done
            && self.missing.count == 0
            && self.extra.count == 0
            && self.different.count == 0
            && self.unsettled.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    #[test]
    fn a_report_with_keys_of_every_kind_reads_back_equal() {
        let mut report = VerifyReport::default();
        report
            .missing
            .add(vec![Value::Int(-5), Value::Text("a".into())], 10);
        report.extra.add(vec![Value::Uuid([7; 16])], 10);
        report.extra.add(vec![Value::Bytes(vec![0, 255])], 1);
        report.different.add(
            RowDifference {
                key: vec![Value::UInt(u64::MAX)],
                columns: vec!["note".into()],
            },
            10,
        );
        report.next = Some(vec![Value::Double(0.1 + 0.2), Value::Float(1.1)]);
        report.pending = vec![vec![Value::Decimal(
            crate::event::Decimal::parse("-1.50").unwrap(),
        )]];
        let text = serde_json::to_string(&report).unwrap();
        let back: VerifyReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.extra.count, 2);
        assert_eq!(back.extra.first.len(), 1);
    }
}
