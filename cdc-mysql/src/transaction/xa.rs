//! XA transactions. The binlog holds a two-phase XA transaction as two groups:
//! its changes between `XA START` (MariaDB: a flag of the GTID event) and
//! `XA END`, ended by an XA_PREPARE event naming the XID; later, in a group of
//! its own, `XA COMMIT` or `XA ROLLBACK` with the same XID. The changes
//! become visible at the commit, so that is where they are emitted: in the
//! commit's place in the stream, with the commit's GTID and position. A
//! prepared transaction is kept by XID until then (other transactions go on
//! in between). MySQL logs `XA COMMIT ... ONE PHASE` as one group ending in an
//! XA_PREPARE event flagged one-phase, MariaDB as an ordinary transaction.
//!
//! A reader that starts after an `XA PREPARE` and then meets its `XA COMMIT`
//! cannot emit the changes: that is an error naming the XID, never a silent
//! loss. Prepared transactions survive the source's reconnects.

use cdc_core::SourceBatch;

use super::{Decoder, Fed, FeedError};
use crate::binlog::cursor::{Cursor, DecodeError};
use crate::binlog::event::EventHeader;
use crate::statement::{Xa, xa_statement, xid_text};

impl Decoder {
    /// An `XA ...` statement.
    pub(super) fn on_xa(
        &mut self,
        h: &EventHeader,
        sql: &str,
        out: &mut Vec<SourceBatch>,
    ) -> Fed<()> {
        match xa_statement(sql) {
            Some(Xa::Commit(xid)) => {
                let Some(mut prepared) = self.prepared.remove(&xid) else {
                    return Err(FeedError::XaNotPrepared { xid });
                };
                // The commit's group carries the GTID and position.
                let group = self.txn.take().unwrap_or_default();
                prepared.txid = group.txid;
                prepared.maria = group.maria;
                prepared.mysql = group.mysql;
                self.txn = Some(prepared);
                self.commit(h, out)?;
            }
            Some(Xa::Rollback(xid)) => {
                self.prepared.remove(&xid);
                // The rollback's group: no changes, its GTID still counts.
                self.commit(h, out)?;
            }
            Some(Xa::Other) | None => {}
        }
        Ok(())
    }

    /// The XA_PREPARE event ending the first group of an XA transaction:
    /// `one_phase` (1 byte), format id (4), gtrid and bqual lengths (4 each),
    /// then gtrid and bqual.
    pub(super) fn on_xa_prepare(
        &mut self,
        h: &EventHeader,
        data: &[u8],
        out: &mut Vec<SourceBatch>,
    ) -> Fed<()> {
        let mut c = Cursor::new(data);
        if c.u8()? != 0 {
            // MySQL's `XA COMMIT ... ONE PHASE`: the transaction ends here.
            return Ok(self.commit(h, out)?);
        }
        let format_id = i64::from(c.u32()? as i32);
        let (gtrid_len, bqual_len) = (c.u32()? as usize, c.u32()? as usize);
        if gtrid_len > 64 || bqual_len > 64 {
            return Err(DecodeError::new("XA_PREPARE event with an XID over 64 bytes").into());
        }
        let xid = xid_text(format_id, c.take(gtrid_len)?, c.take(bqual_len)?);
        // Kept even when empty, so that its commit is not taken for one
        // whose prepare was missed.
        let mut txn = self.txn.take().unwrap_or_default();
        // The prepare's GTID is in the server's binlog state from now on.
        if let Some(g) = txn.maria.take() {
            self.maria.apply(g);
        }
        if let Some(g) = txn.mysql.take() {
            self.mysql.add(&g);
        }
        // Schemas it brought are logged now, before later transactions use them.
        let schemas = std::mem::take(&mut txn.schemas);
        if !schemas.is_empty() {
            self.heartbeat_with(h, schemas, out);
        }
        self.prepared.insert(xid, txn);
        Ok(())
    }

    /// Takes over the XA transactions `previous` prepared and did not end:
    /// this decoder continues the same stream (a reconnect).
    pub fn continue_prepared_xa(&mut self, previous: &mut Decoder) {
        self.prepared.extend(previous.prepared.drain());
    }
}
