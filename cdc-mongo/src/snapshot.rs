//! Collection reads in `_id` chunks, for backfills while the stream runs.
//!
//! Each chunk is one `find` sorted by `_id`, so no cursor or transaction
//! outlives it. Chunks continue from the last `_id` read through the `_id`
//! index's bounds (`min`), which follow BSON's order across types: a
//! collection whose keys mix ObjectIds, strings and numbers is read whole,
//! where an `$gt` filter would skip every key of another type. Reads use
//! majority read concern, the data change streams report.
//!
//! A chunk comes with the change stream's resume point read just before and
//! just after it (`low`, `high`), as the MySQL and PostgreSQL chunk readers
//! give their log positions: every change that can be missing from the
//! chunk's documents is one the stream reports after `low`.

use bson::{RawBson, RawDocumentBuf, doc};
use cdc_core::event::{Change, Record, SourcePosition, TableName, TableSchema, now_micros};
use futures::TryStreamExt;
use mongodb::Client;
use mongodb::options::{Hint, ReadConcern};

use crate::config::MongoConfig;
use crate::document;
use crate::error::{Error, Result, within};
use crate::source::{connect, open_stream};
use crate::token;

/// Where a collection read continues: the `_id` of the last document read.
/// Serializable (as the hex of a one-field BSON document, every BSON type
/// kept) so a backfill resumes after a crash.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ChunkKey(RawBson);

impl From<ChunkKey> for String {
    fn from(key: ChunkKey) -> String {
        let mut doc = bson::RawDocumentBuf::new();
        doc.append("_id", key.0);
        hex::encode(doc.as_bytes())
    }
}

impl TryFrom<String> for ChunkKey {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        let bytes = hex::decode(&text).map_err(|e| format!("chunk key is not hex: {e}"))?;
        let doc = RawDocumentBuf::from_bytes(bytes).map_err(|e| format!("chunk key: {e}"))?;
        match doc.get("_id") {
            Ok(Some(key)) => Ok(ChunkKey(key.to_raw_bson())),
            Ok(None) => Err("chunk key without _id".to_owned()),
            Err(e) => Err(format!("chunk key: {e}")),
        }
    }
}

/// One `_id` chunk of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// `SnapshotRead` changes in `_id` order.
    pub records: Vec<Record>,
    /// Where the next chunk starts; `None` after the last document.
    pub next: Option<ChunkKey>,
}

/// A chunk with the change stream's resume points read before and after it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillChunk {
    /// Resume point read before the chunk's `find`.
    pub low: SourcePosition,
    /// Resume point read after it.
    pub high: SourcePosition,
    /// The documents, stamped with `high`.
    pub chunk: Chunk,
}

/// Reads collections in `_id` chunks without a long-lived cursor.
///
/// ```no_run
/// # async fn run() -> Result<(), cdc_mongo::Error> {
/// use cdc_core::event::TableName;
/// use cdc_mongo::{ChunkReader, MongoConfig};
///
/// let orders = TableName::new("shop", "orders");
/// let config = MongoConfig::new("mongodb://db1/?replicaSet=rs0", vec![orders.clone()]);
/// let reader = ChunkReader::connect(&config).await?;
/// let mut after = None;
/// loop {
///     let read = reader.chunk(&orders, after.as_ref(), 1000).await?;
///     // ... apply read.chunk.records, remember read.low for the catch-up ...
///     match read.chunk.next {
///         Some(next) => after = Some(next),
///         None => break,
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ChunkReader {
    client: Client,
    config: MongoConfig,
}

impl ChunkReader {
    /// Checks `config` and prepares a client (connections open on first use).
    pub async fn connect(config: &MongoConfig) -> Result<ChunkReader> {
        config.validate()?;
        Ok(ChunkReader {
            client: connect(config).await?,
            config: config.clone(),
        })
    }

    /// The schema of a collection's table (the same for every collection).
    pub fn schema(&self, table: &TableName) -> TableSchema {
        document::schema(table)
    }

    /// The change stream's current resume point for the declared collections:
    /// a stream started after it reports every change from now on.
    pub async fn position(&self) -> Result<SourcePosition> {
        let stream = open_stream(&self.client, &self.config, None, 0).await?;
        let token = stream
            .resume_token()
            .as_ref()
            .and_then(token::from_driver)
            .ok_or_else(|| Error::MalformedEvent {
                reason: "the server opened a change stream without a resume point".to_owned(),
            })?;
        let cluster_time = token::cluster_time(&token).unwrap_or(0);
        Ok(token::position(&token, cluster_time))
    }

    /// Reads up to `limit` documents of `table` after `after` (from the first
    /// without), between two resume-point reads.
    pub async fn chunk(
        &self,
        table: &TableName,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<BackfillChunk> {
        let low = self.position().await?;
        let (chunk, high) = self.chunk_then_position(table, after, limit).await?;
        Ok(BackfillChunk { low, high, chunk })
    }

    /// Reads the chunk after `after`, then the resume point, which stamps its
    /// documents: a chunk without the `low` reading, as a backfill needs it.
    pub(crate) async fn chunk_then_position(
        &self,
        table: &TableName,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<(Chunk, SourcePosition)> {
        let documents = self.read(table, after, limit.max(1)).await?;
        let high = self.position().await?;
        let chunk = chunk(table, after, documents, limit.max(1), &high, &self.config)?;
        Ok((chunk, high))
    }

    /// The collection's document count from its metadata (no scan).
    pub async fn estimated_rows(&self, table: &TableName) -> Result<u64> {
        let collection = self
            .client
            .database(&table.schema)
            .collection::<RawDocumentBuf>(&table.name);
        let count = async { collection.estimated_document_count().await };
        within(self.config.idle_timeout, "counting documents", 0, count).await
    }

    async fn read(
        &self,
        table: &TableName,
        after: Option<&ChunkKey>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        let collection = self
            .client
            .database(&table.schema)
            .collection::<RawDocumentBuf>(&table.name);
        // `min` is inclusive: one more, and the key itself dropped below.
        let extra = usize::from(after.is_some());
        let mut find = collection
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .limit(i64::try_from(limit + extra).unwrap_or(i64::MAX))
            .read_concern(ReadConcern::majority());
        if let Some(ChunkKey(key)) = after {
            let key = bson::Bson::try_from(key.clone()).map_err(|e| Error::MalformedEvent {
                reason: format!("chunk key: {e}"),
            })?;
            find = find.min(doc! { "_id": key });
        }
        let read = async { find.await?.try_collect::<Vec<_>>().await };
        within(self.config.idle_timeout, "reading a chunk", 0, read).await
    }
}

/// The chunk of `documents` read from `after` on (the first dropped when it
/// is `after` itself), as snapshot reads stamped with `position`.
fn chunk(
    table: &TableName,
    after: Option<&ChunkKey>,
    documents: Vec<RawDocumentBuf>,
    limit: usize,
    position: &SourcePosition,
    config: &MongoConfig,
) -> Result<Chunk> {
    let malformed = |reason: String| Error::MalformedEvent { reason };
    let time_micros = now_micros();
    let mut records = Vec::with_capacity(documents.len());
    let mut last = None;
    for (i, doc) in documents.into_iter().enumerate() {
        let key = match doc
            .get("_id")
            .map_err(|e| malformed(format!("document _id: {e}")))?
        {
            Some(key) => key.to_raw_bson(),
            None => return Err(malformed("a document without _id".to_owned())),
        };
        if i == 0 && after.is_some_and(|a| a.0 == key) {
            continue;
        }
        if records.len() == limit {
            break;
        }
        let row = vec![
            document::key(&key, config.json).map_err(|e| malformed(e.to_string()))?,
            document::document(&doc, config.json).map_err(|e| malformed(e.to_string()))?,
        ];
        records.push(Record::Change(Change::snapshot_read(
            table.clone(),
            row,
            position.clone(),
            time_micros,
        )));
        last = Some(key);
    }
    let next = (records.len() == limit)
        .then(|| last.map(ChunkKey))
        .flatten();
    Ok(Chunk { records, next })
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use cdc_core::event::ChangeKind;

    use super::*;

    #[test]
    fn chunk_keys_of_every_type_survive_json_and_garbage_is_an_error() {
        let keys = rawdoc! {
            "a": 1.5, "b": "s", "c": bson::oid::ObjectId::new(), "d": i64::MIN,
            "e": { "nested": [1, 2] }, "f": bson::Decimal128::from_bytes([7; 16]),
        };
        for (_, key) in keys.iter().map(Result::unwrap) {
            let key = ChunkKey(key.to_raw_bson());
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(serde_json::from_str::<ChunkKey>(&json).unwrap(), key);
        }
        for garbage in [r#""zz""#, r#""05000000""#, r#""0500000000""#, "1"] {
            assert!(
                serde_json::from_str::<ChunkKey>(garbage).is_err(),
                "{garbage}"
            );
        }
    }

    fn ids(chunk: &Chunk) -> Vec<String> {
        chunk
            .records
            .iter()
            .map(|r| match r {
                Record::Change(c) => match &c.after.as_ref().unwrap()[0] {
                    cdc_core::event::Value::Text(t) => t.to_string(),
                    v => panic!("{v:?}"),
                },
                r => panic!("{r:?}"),
            })
            .collect()
    }

    fn config() -> MongoConfig {
        MongoConfig::new("mongodb://h/", vec![TableName::new("shop", "orders")])
    }

    fn docs(ids: &[i32]) -> Vec<RawDocumentBuf> {
        ids.iter()
            .map(|&id| rawdoc! { "_id": id, "n": id * 10 })
            .collect()
    }

    #[test]
    fn the_key_a_chunk_continues_from_is_not_read_twice() {
        let table = TableName::new("shop", "orders");
        let after = ChunkKey(RawBson::Int32(3));
        let read = chunk(
            &table,
            Some(&after),
            docs(&[3, 4, 5]),
            2,
            &SourcePosition::None,
            &config(),
        )
        .unwrap();
        assert_eq!(ids(&read), ["4", "5"]);
        assert_eq!(read.next, Some(ChunkKey(RawBson::Int32(5))));
    }

    #[test]
    fn a_deleted_continuation_key_loses_no_document() {
        let table = TableName::new("shop", "orders");
        let after = ChunkKey(RawBson::Int32(3));
        // 3 was deleted since: the read starts at 4 and keeps it.
        let read = chunk(
            &table,
            Some(&after),
            docs(&[4, 5, 6]),
            2,
            &SourcePosition::None,
            &config(),
        )
        .unwrap();
        assert_eq!(ids(&read), ["4", "5"]);
    }

    #[test]
    fn a_short_read_is_the_last_chunk() {
        let table = TableName::new("shop", "orders");
        let read = chunk(
            &table,
            None,
            docs(&[1, 2]),
            5,
            &SourcePosition::None,
            &config(),
        )
        .unwrap();
        assert_eq!(ids(&read), ["1", "2"]);
        assert_eq!(read.next, None);
        let Record::Change(first) = &read.records[0] else {
            unreachable!()
        };
        assert_eq!(first.kind, ChangeKind::SnapshotRead);
    }

    #[test]
    fn a_document_without_an_id_is_an_error() {
        let table = TableName::new("shop", "orders");
        let read = chunk(
            &table,
            None,
            vec![rawdoc! { "n": 1 }],
            5,
            &SourcePosition::None,
            &config(),
        );
        assert!(read.is_err());
    }
}
