//! The transaction being read: its changes buffered in memory up to a limit,
//! then spilled to disk, and handed out whole or in parts once it commits.
//!
//! A transaction that stays under `transaction_chunk_bytes` becomes one batch:
//! its new schemas, `Begin`, changes, `Commit`. A larger one is split as the
//! `Source` contract allows: every record goes to a spill file, and after the
//! commit the records are read back into parts of about the chunk size. The
//! first part holds `Begin` (with the commit position, known by then), the last
//! `Commit`; the parts before the last carry the position of the last completed
//! unit, so nothing new is acknowledged until the commit is durable.
//!
//! Re-delivery after a crash must produce the same records, from a decoder that
//! has not seen the earlier transactions: a split transaction therefore carries
//! the schema of every table it uses at that table's first use, whatever the
//! decoder emitted before, so its records depend only on its own events.

use std::path::PathBuf;
use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{Begin, Commit, Record, SharedStr, SourcePosition};

use crate::gtid::{MariaGtid, MySqlGtid};
use crate::rows::TableEntry;
use crate::spill::{SpillError, SpillReader, SpillWriter};

/// How large a transaction may grow in memory before it is spilled and split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitPolicy {
    /// Estimated bytes of changes buffered before spilling, and the size of a part.
    pub chunk_bytes: usize,
    /// Directory of spill files (`None`: the system temp dir).
    pub dir: Option<PathBuf>,
}

impl Default for SplitPolicy {
    fn default() -> Self {
        SplitPolicy {
            chunk_bytes: 64 << 20,
            dir: None,
        }
    }
}

/// A transaction between its first event and its commit.
#[derive(Debug, Default)]
pub(super) struct OpenTxn {
    pub txid: Option<SharedStr>,
    pub maria: Option<MariaGtid>,
    pub mysql: Option<MySqlGtid>,
    pub standalone: bool,
    pub begin_seen: bool,
    /// Schemas new to the decoder, emitted before `Begin` (unsplit transactions).
    pub schemas: Vec<Record>,
    changes: Vec<Record>,
    bytes: usize,
    /// Read tables mapped in this transaction, in first-use order.
    used: Vec<Arc<TableEntry>>,
    spill: Option<SpillWriter>,
}

impl OpenTxn {
    /// A transaction opened by a GTID event.
    pub fn with_txid(txid: Option<SharedStr>) -> Self {
        OpenTxn {
            txid,
            ..OpenTxn::default()
        }
    }

    /// Records that the transaction uses `entry`; a spilling transaction writes
    /// the table's schema at its first use.
    pub fn use_table(&mut self, entry: &Arc<TableEntry>) -> Result<(), SpillError> {
        if self.used.iter().any(|e| Arc::ptr_eq(e, entry)) {
            return Ok(());
        }
        self.used.push(entry.clone());
        if let Some(spill) = &mut self.spill {
            spill.push(&Record::Schema((*entry.schema).clone()))?;
        }
        Ok(())
    }

    /// Adds a change of about `size` bytes; spills when the buffer passes the limit.
    #[inline]
    pub fn push(
        &mut self,
        change: Record,
        size: usize,
        policy: &SplitPolicy,
    ) -> Result<(), SpillError> {
        self.changes.push(change);
        self.bytes += size;
        if self.bytes > policy.chunk_bytes {
            self.spill_changes(policy)?;
        }
        Ok(())
    }

    /// Before the first change, reserves room for `expected` changes and the
    /// `Begin` and `Commit` the batch adds (see [`whole`](Self::whole)), so a
    /// transaction the size of the previous one is buffered without regrowing.
    #[inline]
    pub fn expect_changes(&mut self, expected: usize) {
        if self.changes.capacity() == 0 && expected > 0 {
            self.changes.reserve_exact(expected + 2);
        }
    }

    /// Number of changes buffered in memory (not spilled).
    pub fn buffered_changes(&self) -> usize {
        self.changes.len()
    }

    /// Whether the transaction holds any change.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.spill.is_some()
    }

    fn spill_changes(&mut self, policy: &SplitPolicy) -> Result<(), SpillError> {
        if self.spill.is_none() {
            let mut spill = SpillWriter::create(policy.dir.as_deref())?;
            for entry in &self.used {
                spill.push(&Record::Schema((*entry.schema).clone()))?;
            }
            tracing::debug!(
                txid = self.txid.as_deref().unwrap_or(""),
                "transaction exceeds transaction_chunk_bytes; spilling it to disk"
            );
            self.spill = Some(spill);
        }
        if let Some(spill) = &mut self.spill {
            for change in self.changes.drain(..) {
                spill.push(&change)?;
            }
        }
        self.bytes = 0;
        Ok(())
    }

    /// Ends the transaction at its commit: one whole batch, or the parts to
    /// hand out one by one.
    pub fn finish(
        mut self,
        stamp: Stamp,
        previous: SourcePosition,
    ) -> Result<Finished, SpillError> {
        let Some(mut spill) = self.spill.take() else {
            return Ok(Finished::Whole(self.whole(stamp)));
        };
        for change in self.changes.drain(..) {
            spill.push(&change)?;
        }
        Ok(Finished::Split(Box::new(Parts {
            reader: spill.finish()?,
            stamp,
            previous,
            begun: false,
            done: false,
        })))
    }

    fn whole(self, stamp: Stamp) -> SourceBatch {
        // The batch reuses the buffer of the changes (usually reserved with
        // room for `Begin` and `Commit`): shifting the records in place costs
        // less than a second buffer of the transaction's size.
        let mut records = self.changes;
        for record in &mut records {
            stamp.apply(record);
        }
        records.reserve(self.schemas.len() + 2);
        let head = self
            .schemas
            .into_iter()
            .chain([Record::Begin(stamp.begin())]);
        records.splice(0..0, head);
        records.push(Record::Commit(stamp.commit()));
        // A small transaction after a large one: do not hand the unused room
        // of the reservation on with the batch.
        if records.capacity() > 2 * records.len() + 16 {
            records.shrink_to_fit();
        }
        SourceBatch {
            records,
            position: stamp.position,
        }
    }
}

/// What a committed transaction is stamped with.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub txid: Option<SharedStr>,
    /// The commit position, with the GTID state: on `Begin`, `Commit` and the batch.
    pub position: SourcePosition,
    /// The commit position without the GTID state: on each change (see
    /// [`SourcePosition::without_gtid`]).
    change_position: SourcePosition,
    pub time: i64,
}

impl Stamp {
    /// The stamp of a transaction committing at `position` at `time` (microseconds).
    pub fn new(txid: Option<SharedStr>, position: SourcePosition, time: i64) -> Self {
        Stamp {
            txid,
            change_position: position.without_gtid(),
            position,
            time,
        }
    }

    fn begin(&self) -> Begin {
        Begin {
            txid: self.txid.clone(),
            position: self.position.clone(),
            commit_time_micros: self.time,
        }
    }

    fn commit(&self) -> Commit {
        Commit {
            txid: self.txid.clone(),
            position: self.position.clone(),
            commit_time_micros: self.time,
        }
    }

    #[inline]
    fn apply(&self, record: &mut Record) {
        if let Record::Change(c) = record {
            c.position = self.change_position.clone();
            c.txid = self.txid.clone();
            c.commit_time_micros = self.time;
        }
    }
}

/// A committed transaction.
#[derive(Debug)]
pub(super) enum Finished {
    /// Small enough for one batch.
    Whole(SourceBatch),
    /// Spilled: read back in parts.
    Split(Box<Parts>),
}

/// The parts of a committed, spilled transaction, read back one at a time.
#[derive(Debug)]
pub(crate) struct Parts {
    reader: SpillReader,
    stamp: Stamp,
    previous: SourcePosition,
    begun: bool,
    done: bool,
}

impl Parts {
    /// The next part, `None` after the one holding `Commit`.
    pub fn next_part(&mut self, chunk_bytes: usize) -> Result<Option<SourceBatch>, SpillError> {
        if self.done {
            return Ok(None);
        }
        let mut records = Vec::new();
        let mut bytes = 0usize;
        loop {
            let Some((mut record, size)) = self.reader.next_record()? else {
                if !self.begun {
                    records.push(Record::Begin(self.stamp.begin()));
                }
                records.push(Record::Commit(self.stamp.commit()));
                self.done = true;
                return Ok(Some(SourceBatch {
                    records,
                    position: self.stamp.position.clone(),
                }));
            };
            // Schemas before the first change go before `Begin`, as in a whole batch.
            if !self.begun && !matches!(record, Record::Schema(_)) {
                records.push(Record::Begin(self.stamp.begin()));
                self.begun = true;
            }
            self.stamp.apply(&mut record);
            records.push(record);
            bytes += size;
            if self.begun && bytes >= chunk_bytes {
                return Ok(Some(SourceBatch {
                    records,
                    position: self.previous.clone(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cdc_core::event::{Change, ChangeKind, TableName, TableSchema, Value};

    use super::*;

    fn change(id: i64) -> Record {
        Record::Change(Change {
            table: TableName::new("shop", "orders"),
            kind: ChangeKind::Insert,
            before: None,
            after: Some(vec![Value::Int(id)]),
            position: SourcePosition::None,
            txid: None,
            commit_time_micros: 0,
        })
    }

    fn stamp() -> Stamp {
        Stamp::new(
            Some("0-1-7".into()),
            SourcePosition::MySql {
                file: "mysql-bin.000001".into(),
                pos: 1234,
                gtid: Some("0-1-7".into()),
            },
            1_000_000,
        )
    }

    fn whole(txn: OpenTxn) -> SourceBatch {
        match txn.finish(stamp(), SourcePosition::None) {
            Ok(Finished::Whole(batch)) => batch,
            other => panic!("expected a whole batch, got {other:?}"),
        }
    }

    #[test]
    fn a_whole_batch_is_schemas_then_begin_then_stamped_changes_then_commit() {
        let policy = SplitPolicy::default();
        let mut txn = OpenTxn::with_txid(Some("0-1-7".into()));
        txn.schemas.push(Record::Schema(TableSchema {
            table: TableName::new("shop", "orders"),
            columns: vec![],
            primary_key: vec![],
        }));
        txn.expect_changes(3);
        for id in 0..3 {
            txn.push(change(id), 100, &policy).unwrap();
        }
        let batch = whole(txn);
        let expected = stamp();
        assert_eq!(batch.position, expected.position);
        assert_eq!(batch.records.len(), 6);
        assert!(matches!(batch.records[0], Record::Schema(_)));
        assert!(matches!(&batch.records[1], Record::Begin(b) if b.position == expected.position));
        for (i, record) in batch.records[2..5].iter().enumerate() {
            let Record::Change(c) = record else {
                panic!("record {i} is not a change: {record:?}");
            };
            assert_eq!(c.after, Some(vec![Value::Int(i as i64)]));
            let SourcePosition::MySql { file, pos, gtid } = &c.position else {
                panic!("change {i} has no MySQL position: {:?}", c.position);
            };
            assert_eq!(
                (file.as_str(), *pos, gtid),
                ("mysql-bin.000001", 1234, &None)
            );
            assert_eq!(c.txid, expected.txid);
            assert_eq!(c.commit_time_micros, expected.time);
        }
        assert!(matches!(&batch.records[5], Record::Commit(c) if c.txid == expected.txid));
    }

    #[test]
    fn a_spilled_transaction_reads_back_begin_its_changes_in_order_and_commit() {
        let policy = SplitPolicy {
            chunk_bytes: 250,
            dir: None,
        };
        let mut txn = OpenTxn::with_txid(Some("0-1-7".into()));
        for id in 0..10 {
            txn.push(change(id), 100, &policy).unwrap();
        }
        let Ok(Finished::Split(mut parts)) = txn.finish(stamp(), SourcePosition::None) else {
            panic!("expected a split transaction");
        };
        let mut records = Vec::new();
        let mut count = 0;
        while let Some(part) = parts.next_part(policy.chunk_bytes).unwrap() {
            records.extend(part.records);
            count += 1;
        }
        assert!(count > 1, "one part only");
        assert!(matches!(&records[0], Record::Begin(b) if b.position == stamp().position));
        assert!(matches!(records.last(), Some(Record::Commit(_))));
        let ids: Vec<_> = records[1..records.len() - 1]
            .iter()
            .map(|r| match r {
                Record::Change(c) => c.after.clone(),
                other => panic!("not a change: {other:?}"),
            })
            .collect();
        let expected: Vec<_> = (0..10).map(|id| Some(vec![Value::Int(id)])).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn a_transaction_larger_or_smaller_than_expected_is_still_whole_and_not_oversized() {
        let policy = SplitPolicy::default();
        let mut larger = OpenTxn::default();
        larger.expect_changes(2);
        for id in 0..50 {
            larger.push(change(id), 100, &policy).unwrap();
        }
        let batch = whole(larger);
        assert_eq!(batch.records.len(), 52);
        assert!(matches!(batch.records[0], Record::Begin(_)));
        assert!(matches!(batch.records[51], Record::Commit(_)));

        let mut smaller = OpenTxn::default();
        smaller.expect_changes(4096);
        smaller.push(change(1), 100, &policy).unwrap();
        let batch = whole(smaller);
        assert_eq!(batch.records.len(), 3);
        assert!(batch.records.capacity() <= 2 * batch.records.len() + 16);
    }
}
