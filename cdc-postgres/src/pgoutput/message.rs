//! pgoutput message shapes and the decoder.

use super::DecodeError;
use super::reader::ByteReader;

/// One decoded pgoutput message, borrowing from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum PgOutputMessage<'a> {
    /// Start of a transaction.
    Begin(BeginMessage),
    /// End of a transaction.
    Commit(CommitMessage),
    /// Replication origin of the transaction.
    Origin {
        /// Commit LSN on the origin server.
        commit_lsn: u64,
        /// Origin name.
        name: &'a str,
    },
    /// A table's description, sent before its first change in a session and after it changes.
    Relation(RelationMessage<'a>),
    /// A data type's name, sent before a relation uses a non-builtin type.
    Type(TypeMessage<'a>),
    /// A row insert.
    Insert {
        /// Relation OID.
        relation_id: u32,
        /// The new row.
        new: TupleData<'a>,
    },
    /// A row update.
    Update {
        /// Relation OID.
        relation_id: u32,
        /// The old key columns (replica identity DEFAULT or USING INDEX, when the key changed).
        key: Option<TupleData<'a>>,
        /// The whole old row (replica identity FULL).
        old: Option<TupleData<'a>>,
        /// The new row.
        new: TupleData<'a>,
    },
    /// A row delete.
    Delete {
        /// Relation OID.
        relation_id: u32,
        /// The old key columns (replica identity DEFAULT or USING INDEX).
        key: Option<TupleData<'a>>,
        /// The whole old row (replica identity FULL).
        old: Option<TupleData<'a>>,
    },
    /// One or more tables were truncated.
    Truncate(TruncateMessage),
    /// A logical decoding message (`pg_logical_emit_message`).
    Message(LogicalMessage<'a>),
}

/// Start of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginMessage {
    /// LSN of the commit record.
    pub final_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time: i64,
    /// Transaction id.
    pub xid: u32,
}

/// End of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMessage {
    /// Flags (unused).
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: u64,
    /// LSN where the commit record ends: the position to confirm.
    pub end_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time: i64,
}

/// Replica identity setting of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// The primary key.
    Default,
    /// No old row image.
    Nothing,
    /// The whole old row.
    Full,
    /// The columns of a chosen unique index.
    Index,
}

/// One column of a [`RelationMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn<'a> {
    /// Whether the column is part of the replica identity key.
    pub is_key: bool,
    /// Column name.
    pub name: &'a str,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

/// A table's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationMessage<'a> {
    /// Relation OID.
    pub id: u32,
    /// Schema name.
    pub namespace: &'a str,
    /// Table name.
    pub name: &'a str,
    /// Replica identity.
    pub replica_identity: ReplicaIdentity,
    /// Published columns in order.
    pub columns: Vec<RelationColumn<'a>>,
}

/// A data type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMessage<'a> {
    /// Type OID.
    pub id: u32,
    /// Schema name.
    pub namespace: &'a str,
    /// Type name.
    pub name: &'a str,
}

/// Tables truncated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncateMessage {
    /// `TRUNCATE ... CASCADE`.
    pub cascade: bool,
    /// `TRUNCATE ... RESTART IDENTITY`.
    pub restart_identity: bool,
    /// Relation OIDs.
    pub relation_ids: Vec<u32>,
}

/// A logical decoding message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage<'a> {
    /// Whether the message was emitted inside a transaction.
    pub transactional: bool,
    /// LSN of the message.
    pub lsn: u64,
    /// Prefix given by the emitter.
    pub prefix: &'a str,
    /// Content bytes.
    pub content: &'a [u8],
}

/// One column value of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnData<'a> {
    /// SQL NULL.
    Null,
    /// An unchanged TOASTed value that was not sent.
    UnchangedToast,
    /// A value in text format.
    Text(&'a [u8]),
    /// A value in binary format.
    Binary(&'a [u8]),
}

/// The column values of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleData<'a> {
    /// Values in relation column order.
    pub columns: Vec<ColumnData<'a>>,
}

/// Decodes one pgoutput message (the payload of an XLogData message).
pub fn decode(buf: &[u8]) -> Result<PgOutputMessage<'_>, DecodeError> {
    let mut r = ByteReader::new(buf);
    let tag = r.u8("message tag").map_err(|_| DecodeError::Empty)?;
    Ok(match tag {
        b'B' => PgOutputMessage::Begin(BeginMessage {
            final_lsn: r.u64("begin final lsn")?,
            commit_time: r.i64("begin commit time")?,
            xid: r.u32("begin xid")?,
        }),
        b'C' => PgOutputMessage::Commit(CommitMessage {
            flags: r.u8("commit flags")?,
            commit_lsn: r.u64("commit lsn")?,
            end_lsn: r.u64("commit end lsn")?,
            commit_time: r.i64("commit time")?,
        }),
        b'O' => PgOutputMessage::Origin {
            commit_lsn: r.u64("origin commit lsn")?,
            name: r.cstr("origin name")?,
        },
        b'R' => PgOutputMessage::Relation(relation(&mut r)?),
        b'Y' => PgOutputMessage::Type(TypeMessage {
            id: r.u32("type oid")?,
            namespace: r.cstr("type namespace")?,
            name: r.cstr("type name")?,
        }),
        b'I' => {
            let relation_id = r.u32("insert relation id")?;
            expect_tag(&mut r, b'N', "insert tuple")?;
            PgOutputMessage::Insert {
                relation_id,
                new: tuple(&mut r)?,
            }
        }
        b'U' => update(&mut r)?,
        b'D' => {
            let relation_id = r.u32("delete relation id")?;
            let (key, old) = old_image(&mut r, "delete tuple")?;
            PgOutputMessage::Delete {
                relation_id,
                key,
                old,
            }
        }
        b'T' => truncate(&mut r)?,
        b'M' => {
            let flags = r.u8("message flags")?;
            let lsn = r.u64("message lsn")?;
            let prefix = r.cstr("message prefix")?;
            let len = length(r.i32("message length")?, "message length")?;
            PgOutputMessage::Message(LogicalMessage {
                transactional: flags & 1 == 1,
                lsn,
                prefix,
                content: r.bytes(len, "message content")?,
            })
        }
        other => {
            return Err(DecodeError::UnknownTag {
                what: "message",
                tag: other,
                offset: 0,
            });
        }
    })
}

fn length(value: i32, what: &'static str) -> Result<usize, DecodeError> {
    usize::try_from(value).map_err(|_| DecodeError::NegativeLength {
        what,
        value: value.into(),
    })
}

fn expect_tag(r: &mut ByteReader<'_>, want: u8, what: &'static str) -> Result<(), DecodeError> {
    let offset = r.position();
    let tag = r.u8(what)?;
    if tag == want {
        Ok(())
    } else {
        Err(DecodeError::UnknownTag { what, tag, offset })
    }
}

fn relation<'a>(r: &mut ByteReader<'a>) -> Result<RelationMessage<'a>, DecodeError> {
    let id = r.u32("relation id")?;
    let namespace = r.cstr("relation namespace")?;
    let name = r.cstr("relation name")?;
    let offset = r.position();
    let replica_identity = match r.u8("replica identity")? {
        b'd' => ReplicaIdentity::Default,
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "replica identity",
                tag,
                offset,
            });
        }
    };
    let count = length(r.i16("relation column count")?.into(), "column count")?;
    // Each column takes at least 10 bytes; cap the allocation by what the input can hold.
    let mut columns = Vec::with_capacity(count.min(r.remaining() / 10));
    for _ in 0..count {
        columns.push(RelationColumn {
            is_key: r.u8("column flags")? & 1 == 1,
            name: r.cstr("column name")?,
            type_oid: r.u32("column type oid")?,
            type_modifier: r.i32("column type modifier")?,
        });
    }
    Ok(RelationMessage {
        id,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn tuple<'a>(r: &mut ByteReader<'a>) -> Result<TupleData<'a>, DecodeError> {
    let count = length(r.i16("tuple column count")?.into(), "tuple column count")?;
    let mut columns = Vec::with_capacity(count.min(r.remaining()));
    for _ in 0..count {
        let offset = r.position();
        columns.push(match r.u8("column kind")? {
            b'n' => ColumnData::Null,
            b'u' => ColumnData::UnchangedToast,
            b't' => {
                let len = length(r.i32("text value length")?, "text value length")?;
                ColumnData::Text(r.bytes(len, "text value")?)
            }
            b'b' => {
                let len = length(r.i32("binary value length")?, "binary value length")?;
                ColumnData::Binary(r.bytes(len, "binary value")?)
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "column kind",
                    tag,
                    offset,
                });
            }
        });
    }
    Ok(TupleData { columns })
}

type OldImage<'a> = (Option<TupleData<'a>>, Option<TupleData<'a>>);

fn old_image<'a>(r: &mut ByteReader<'a>, what: &'static str) -> Result<OldImage<'a>, DecodeError> {
    let offset = r.position();
    match r.u8(what)? {
        b'K' => Ok((Some(tuple(r)?), None)),
        b'O' => Ok((None, Some(tuple(r)?))),
        tag => Err(DecodeError::UnknownTag { what, tag, offset }),
    }
}

fn update<'a>(r: &mut ByteReader<'a>) -> Result<PgOutputMessage<'a>, DecodeError> {
    let relation_id = r.u32("update relation id")?;
    let offset = r.position();
    let (key, old, new) = match r.u8("update tuple")? {
        b'N' => (None, None, tuple(r)?),
        b'K' => {
            let key = tuple(r)?;
            expect_tag(r, b'N', "update new tuple")?;
            (Some(key), None, tuple(r)?)
        }
        b'O' => {
            let old = tuple(r)?;
            expect_tag(r, b'N', "update new tuple")?;
            (None, Some(old), tuple(r)?)
        }
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "update tuple",
                tag,
                offset,
            });
        }
    };
    Ok(PgOutputMessage::Update {
        relation_id,
        key,
        old,
        new,
    })
}

fn truncate<'a>(r: &mut ByteReader<'a>) -> Result<PgOutputMessage<'a>, DecodeError> {
    let count = length(r.i32("truncate relation count")?, "truncate relation count")?;
    let options = r.u8("truncate options")?;
    let mut relation_ids = Vec::with_capacity(count.min(r.remaining() / 4));
    for _ in 0..count {
        relation_ids.push(r.u32("truncate relation id")?);
    }
    Ok(PgOutputMessage::Truncate(TruncateMessage {
        cascade: options & 1 == 1,
        restart_identity: options & 2 == 2,
        relation_ids,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_bytes() -> Vec<u8> {
        let mut b = vec![b'I'];
        b.extend(16384u32.to_be_bytes());
        b.push(b'N');
        b.extend(3i16.to_be_bytes());
        b.push(b't');
        b.extend(2i32.to_be_bytes());
        b.extend(b"42");
        b.push(b'n');
        b.push(b'u');
        b
    }

    #[test]
    fn insert_with_text_null_and_unchanged_columns_decodes() {
        let bytes = insert_bytes();
        let msg = decode(&bytes).unwrap();
        assert_eq!(
            msg,
            PgOutputMessage::Insert {
                relation_id: 16384,
                new: TupleData {
                    columns: vec![
                        ColumnData::Text(b"42"),
                        ColumnData::Null,
                        ColumnData::UnchangedToast
                    ]
                }
            }
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error_not_a_panic() {
        let bytes = insert_bytes();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn relation_message_decodes_columns_and_identity() {
        let mut b = vec![b'R'];
        b.extend(7u32.to_be_bytes());
        b.extend(b"public\0t\0f");
        b.extend(1i16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        let PgOutputMessage::Relation(rel) = decode(&b).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(rel.replica_identity, ReplicaIdentity::Full);
        assert_eq!(rel.columns[0].name, "id");
        assert!(rel.columns[0].is_key);
    }

    #[test]
    fn negative_lengths_and_unknown_tags_are_rejected() {
        let mut b = vec![b'I'];
        b.extend(1u32.to_be_bytes());
        b.push(b'N');
        b.extend(1i16.to_be_bytes());
        b.push(b't');
        b.extend((-5i32).to_be_bytes());
        assert!(matches!(
            decode(&b),
            Err(DecodeError::NegativeLength { .. })
        ));
        assert!(matches!(decode(b"Z"), Err(DecodeError::UnknownTag { .. })));
        assert_eq!(decode(b""), Err(DecodeError::Empty));
    }

    #[test]
    fn update_with_old_image_and_commit_decode() {
        let mut b = vec![b'U'];
        b.extend(1u32.to_be_bytes());
        b.push(b'O');
        b.extend(0i16.to_be_bytes());
        b.push(b'N');
        b.extend(0i16.to_be_bytes());
        assert!(matches!(
            decode(&b).unwrap(),
            PgOutputMessage::Update {
                old: Some(_),
                key: None,
                ..
            }
        ));
        let mut c = vec![b'C', 0];
        c.extend(10u64.to_be_bytes());
        c.extend(20u64.to_be_bytes());
        c.extend(5i64.to_be_bytes());
        assert_eq!(
            decode(&c).unwrap(),
            PgOutputMessage::Commit(CommitMessage {
                flags: 0,
                commit_lsn: 10,
                end_lsn: 20,
                commit_time: 5
            })
        );
    }
}
