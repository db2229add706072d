//! A loopback server that speaks just enough of MongoDB's wire protocol
//! (OP_MSG: `hello`, `aggregate` with `$changeStream`, `getMore`,
//! `killCursors`, `endSessions`, `find`, `count`) for the real driver to run a change stream
//! over scripted events. No MongoDB server can be installed on the project's
//! machines; this drives the source's driver-facing code through the driver
//! itself. Events are served in order; a stream resumes after the event
//! whose token it names, and a token the server never issued is history
//! lost (code 286), as on a real server whose oplog rolled over.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf, doc, rawdoc};

const OP_MSG: i32 = 2013;

/// What the server holds, shared with the test.
#[derive(Default)]
pub struct State {
    /// Every event ever written, in order.
    pub events: Vec<RawDocumentBuf>,
    /// The `$changeStream` stage of each `aggregate`, in order.
    pub opened: Vec<Document>,
    /// The database and the `$match` stage of each `aggregate`, in order.
    pub opened_on: Vec<(String, Document)>,
    /// Error codes the next `aggregate`s fail with, first first.
    pub fail_aggregates: Vec<i32>,
    /// Documents of collections, by name, for `find`.
    pub collections: std::collections::HashMap<String, Vec<Document>>,
    /// Every `find` command received.
    pub finds: Vec<Document>,
    cursors: Vec<usize>,
}

/// The server; dropped, it stops answering.
pub struct FakeMongod {
    port: u16,
    state: Arc<Mutex<State>>,
    down: Arc<AtomicBool>,
}

impl FakeMongod {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let down = Arc::new(AtomicBool::new(false));
        let (shared, is_down) = (state.clone(), down.clone());
        std::thread::spawn(move || {
            let connections = Arc::new(AtomicI32::new(0));
            for conn in listener.incoming().flatten() {
                if is_down.load(Ordering::SeqCst) {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                let id = connections.fetch_add(1, Ordering::SeqCst) + 1;
                let (state, down) = (shared.clone(), is_down.clone());
                std::thread::spawn(move || serve(conn, id, &state, &down));
            }
        });
        FakeMongod { port, state, down }
    }

    /// A connection string for the driver: direct, quick to give up.
    pub fn url(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=1000\
             &heartbeatFrequencyMS=500",
            self.port
        )
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The state, for a task that outlives a borrow of the server.
    pub fn state_handle(&self) -> Arc<Mutex<State>> {
        self.state.clone()
    }

    /// Appends events, as writes on the server would.
    pub fn write(&self, events: impl IntoIterator<Item = RawDocumentBuf>) {
        self.state().events.extend(events);
    }

    /// Drops every connection and refuses new ones until `up`.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for FakeMongod {
    fn drop(&mut self) {
        self.down();
    }
}

fn serve(mut conn: TcpStream, id: i32, state: &Mutex<State>, down: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    loop {
        if down.load(Ordering::SeqCst) {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        let mut header = [0u8; 16];
        match read_exact_or_idle(&mut conn, &mut header) {
            Some(true) => {}
            Some(false) => continue,
            None => return,
        }
        let length = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let request_id = i32::from_le_bytes(header[4..8].try_into().unwrap());
        let op_code = i32::from_le_bytes(header[12..16].try_into().unwrap());
        let mut body = vec![0u8; length.saturating_sub(16)];
        if conn.set_read_timeout(None).is_err() || conn.read_exact(&mut body).is_err() {
            return;
        }
        let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
        assert_eq!(op_code, OP_MSG, "the driver speaks OP_MSG only");
        // Flag bits, then a kind-0 section: the command.
        assert_eq!(body[4], 0, "a command section first");
        let command = bson::from_slice::<Document>(&body[5..]).unwrap();
        let reply = answer(&command, id, state);
        if down.load(Ordering::SeqCst) {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        let reply = RawDocumentBuf::from_document(&reply).unwrap();
        let mut out = Vec::with_capacity(reply.as_bytes().len() + 21);
        out.extend(((reply.as_bytes().len() + 21) as i32).to_le_bytes());
        out.extend(id.wrapping_mul(1000).to_le_bytes());
        out.extend(request_id.to_le_bytes());
        out.extend(OP_MSG.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.push(0);
        out.extend(reply.as_bytes());
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

/// `Some(true)` read, `Some(false)` nothing yet, `None` closed.
fn read_exact_or_idle(conn: &mut TcpStream, buf: &mut [u8]) -> Option<bool> {
    match conn.read(&mut buf[..1]) {
        Ok(0) => None,
        Ok(_) => {
            conn.set_read_timeout(None).ok()?;
            conn.read_exact(&mut buf[1..]).ok()?;
            conn.set_read_timeout(Some(Duration::from_millis(50)))
                .ok()?;
            Some(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Some(false)
        }
        Err(_) => None,
    }
}

/// The token a stream at `position` (events served so far) resumes from.
fn position_token(events: &[RawDocumentBuf], position: usize) -> Bson {
    match position.checked_sub(1).and_then(|i| events.get(i)) {
        Some(event) => {
            Bson::Document(bson::Document::try_from(event.get_document("_id").unwrap()).unwrap())
        }
        None => Bson::Document(doc! { "_data": "8200000001000000012B0229296E04" }),
    }
}

fn answer(command: &Document, connection: i32, state: &Mutex<State>) -> Document {
    let name = command.keys().next().cloned().unwrap_or_default();
    let ns = |coll: &str| format!("{}.{coll}", command.get_str("$db").unwrap_or("admin"));
    let mut state = state.lock().unwrap();
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" => doc! {
            "ok": 1,
            "helloOk": true,
            "isWritablePrimary": true,
            "ismaster": true,
            "setName": "rs0",
            "hosts": ["127.0.0.1"],
            "maxWireVersion": 17,
            "minWireVersion": 0,
            "maxBsonObjectSize": 16_777_216,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": connection,
            "localTime": bson::DateTime::now(),
        },
        "aggregate" => {
            let stage = command
                .get_array("pipeline")
                .ok()
                .and_then(|p| p.first())
                .and_then(Bson::as_document)
                .and_then(|s| s.get_document("$changeStream").ok())
                .cloned()
                .unwrap_or_default();
            state.opened.push(stage.clone());
            let matched = command
                .get_array("pipeline")
                .ok()
                .and_then(|p| p.get(1))
                .and_then(Bson::as_document)
                .cloned()
                .unwrap_or_default();
            let db = command.get_str("$db").unwrap_or_default().to_owned();
            state.opened_on.push((db, matched));
            if !state.fail_aggregates.is_empty() {
                let code = state.fail_aggregates.remove(0);
                return doc! { "ok": 0, "code": code, "codeName": "Scripted", "errmsg": format!("scripted failure {code}") };
            }
            let start = match stage
                .get_document("startAfter")
                .or(stage.get_document("resumeAfter"))
            {
                Ok(token) => {
                    let found = state.events.iter().position(|e| {
                        bson::Document::try_from(e.get_document("_id").unwrap()).unwrap() == *token
                    });
                    match found {
                        Some(i) => i + 1,
                        None if Bson::Document(token.clone()) == position_token(&[], 0) => 0,
                        None => {
                            return doc! { "ok": 0, "code": 286, "codeName": "ChangeStreamHistoryLost",
                            "errmsg": "Resume of change stream was not possible, as the resume point may no longer be in the oplog." };
                        }
                    }
                }
                Err(_) => state.events.len(),
            };
            state.cursors.push(start);
            let cursor = state.cursors.len() as i64;
            doc! { "ok": 1, "cursor": {
                "id": cursor,
                "ns": ns("$cmd.aggregate"),
                "firstBatch": [],
                "postBatchResumeToken": position_token(&state.events, start),
            } }
        }
        "getMore" => {
            let cursor = command.get_i64("getMore").unwrap_or(0);
            let batch_size = command.get_i32("batchSize").unwrap_or(1000).max(1) as usize;
            let Some(at) = usize::try_from(cursor - 1)
                .ok()
                .filter(|&i| i < state.cursors.len())
            else {
                return doc! { "ok": 0, "code": 43, "codeName": "CursorNotFound", "errmsg": "cursor not found" };
            };
            let from = state.cursors[at];
            let to = (from + batch_size).min(state.events.len());
            let batch: Vec<Bson> = state.events[from..to]
                .iter()
                .map(|e| Bson::Document(bson::Document::try_from(e.as_ref()).unwrap()))
                .collect();
            state.cursors[at] = to;
            let token = position_token(&state.events, to);
            if batch.is_empty() {
                // An awaited poll: the real server waits up to maxTimeMS.
                drop(state);
                std::thread::sleep(Duration::from_millis(20));
            }
            doc! { "ok": 1, "cursor": {
                "id": cursor,
                "ns": ns(command.get_str("collection").unwrap_or("")),
                "nextBatch": batch,
                "postBatchResumeToken": token,
            } }
        }
        "count" => {
            let coll = command.get_str("count").unwrap_or_default();
            let n = state.collections.get(coll).map_or(0, Vec::len);
            doc! { "ok": 1, "n": n as i64 }
        }
        "find" => {
            state.finds.push(command.clone());
            let coll = command.get_str("find").unwrap_or_default();
            let mut docs = state.collections.get(coll).cloned().unwrap_or_default();
            docs.sort_by(|a, b| bson_order(a.get("_id").unwrap(), b.get("_id").unwrap()));
            if let Ok(min) = command.get_document("min") {
                let min = min.get("_id").unwrap();
                docs.retain(|d| bson_order(d.get("_id").unwrap(), min).is_ge());
            }
            let limit = command.get_i64("limit").map_or(usize::MAX, |l| l as usize);
            docs.truncate(limit);
            doc! { "ok": 1, "cursor": {
                "id": 0_i64,
                "ns": ns(coll),
                "firstBatch": docs,
            } }
        }
        "killCursors" => doc! { "ok": 1, "cursorsKilled": [] },
        _ => doc! { "ok": 1 },
    }
}

/// BSON's order for the key types the tests use: numbers, then strings,
/// then ObjectIds.
fn bson_order(a: &Bson, b: &Bson) -> std::cmp::Ordering {
    fn rank(v: &Bson) -> (u8, f64, String) {
        match v {
            Bson::Int32(n) => (1, f64::from(*n), String::new()),
            Bson::Int64(n) => (1, *n as f64, String::new()),
            Bson::Double(n) => (1, *n, String::new()),
            Bson::String(s) => (2, 0.0, s.clone()),
            Bson::ObjectId(id) => (3, 0.0, id.to_hex()),
            other => panic!("no order for {other:?} in the fake"),
        }
    }
    let (a, b) = (rank(a), rank(b));
    a.0.cmp(&b.0)
        .then(a.1.total_cmp(&b.1))
        .then_with(|| a.2.cmp(&b.2))
}

/// A scripted insert event on `shop.orders` with token number `n`.
pub fn scripted_insert(n: u32, id: i32) -> RawDocumentBuf {
    scripted_insert_into("orders", n, id)
}

/// A scripted insert event on `shop.<coll>` with token number `n`.
pub fn scripted_insert_into(coll: &str, n: u32, id: i32) -> RawDocumentBuf {
    let time = (1_700_000_000u64 << 32) | u64::from(n);
    rawdoc! {
        "_id": { "_data": format!("82{time:016X}2B0229296E04") },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: 1_700_000_000, increment: n },
        "ns": { "db": "shop", "coll": coll },
        "documentKey": { "_id": id },
        "fullDocument": { "_id": id, "n": i64::from(n) },
    }
}
