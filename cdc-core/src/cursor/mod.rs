//! Named durable cursors: where each consumer of the change log is.
//!
//! A cursor's offset is the next offset its consumer will read: every record
//! below it has been processed. Each cursor is one file `<name>.cursor` in
//! `<log dir>/cursors/`, replaced atomically on every commit (write a temporary
//! file, fsync it, rename it over the old one, fsync the directory), so a crash
//! leaves either the old or the new value. The file is checksummed, so a damaged
//! file is reported as [`Error::Corrupt`], never misread:
//!
//! ```text
//! 0   [u8; 8] magic "CDCCURS1"
//! 8   u32 format version (1)
//! 12  u32 reserved (0)
//! 16  u64 offset
//! 24  u32 crc32 of bytes 0..24
//! 28  u32 reserved (0)
//! ```

mod file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::log::fs::FileSystem;
use file::{CURSOR_SUFFIX, decode_cursor, encode_cursor};

/// Where a consumer stands relative to the retained log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorState {
    /// Every record at or after the cursor is still in the log.
    Active,
    /// Records the consumer never read were removed by retention: re-backfill it.
    NeedsBackfill {
        /// The oldest offset still in the log.
        oldest_retained: u64,
    },
}

/// A cursor with its lag behind the durable end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStatus {
    /// The cursor name.
    pub name: String,
    /// The next offset the consumer will read.
    pub offset: u64,
    /// Durable records the consumer has not processed yet.
    pub lag_events: u64,
    /// Whether the consumer can continue from the log.
    pub state: CursorState,
}

#[derive(Debug, Clone)]
enum Slot {
    Valid(u64),
    Corrupt { path: PathBuf, reason: &'static str },
}

/// The durable cursors of one change log, in `<log dir>/cursors/`.
///
/// Every method is synchronous and returns after the change is durable; commits
/// are serialized, so they are monotonic across threads too.
#[derive(Debug)]
pub struct CursorStore {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    slots: Mutex<BTreeMap<String, Slot>>,
}

/// Checks a cursor name: 1..=128 characters of `[A-Za-z0-9_.-]`.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidCursorName {
            name: name.to_owned(),
        })
    }
}

impl CursorStore {
    /// Opens (creating if needed) the cursor directory `dir` and loads every cursor.
    pub(crate) fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<Self> {
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut slots = BTreeMap::new();
        for path in fs.list(dir).map_err(|e| Error::io(dir, e))? {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file_name.ends_with(".tmp") {
                fs.remove(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            let Some(name) = file_name.strip_suffix(CURSOR_SUFFIX) else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let slot = load(&*fs, &path)?;
            slots.insert(name.to_owned(), slot);
        }
        Ok(Self {
            dir: dir.to_owned(),
            fs,
            slots: Mutex::new(slots),
        })
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{CURSOR_SUFFIX}"))
    }

    fn write(&self, name: &str, offset: u64) -> Result<()> {
        let path = self.path(name);
        crate::log::fs::replace_file(&*self.fs, &path, &encode_cursor(offset))
            .map_err(|e| Error::io(path, e))
    }

    /// Creates a cursor at `offset`; `Err(CursorExists)` if the name is taken.
    pub fn create(&self, name: &str, offset: u64) -> Result<()> {
        check_name(name)?;
        let mut slots = self.slots();
        if slots.contains_key(name) {
            return Err(Error::CursorExists {
                name: name.to_owned(),
            });
        }
        self.write(name, offset)?;
        slots.insert(name.to_owned(), Slot::Valid(offset));
        Ok(())
    }

    /// The cursor's offset, `None` if it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<u64>> {
        check_name(name)?;
        match self.slots().get(name) {
            None => Ok(None),
            Some(Slot::Valid(offset)) => Ok(Some(*offset)),
            Some(Slot::Corrupt { path, reason }) => Err(Error::corrupt(path, 0, *reason)),
        }
    }

    /// Moves the cursor to `offset`, durably and atomically. Moving backwards is
    /// `Err(CursorRegression)`; committing the current offset again is allowed.
    pub fn commit(&self, name: &str, offset: u64) -> Result<()> {
        check_name(name)?;
        let mut slots = self.slots();
        let current = match slots.get(name) {
            None => {
                return Err(Error::CursorNotFound {
                    name: name.to_owned(),
                });
            }
            Some(Slot::Corrupt { path, reason }) => return Err(Error::corrupt(path, 0, *reason)),
            Some(Slot::Valid(current)) => *current,
        };
        if offset < current {
            return Err(Error::CursorRegression {
                name: name.to_owned(),
                current,
                requested: offset,
            });
        }
        if offset == current {
            return Ok(());
        }
        match self.write(name, offset) {
            Ok(()) => {
                slots.insert(name.to_owned(), Slot::Valid(offset));
                Ok(())
            }
            Err(e) => {
                // The rename may or may not have happened: trust the disk again.
                if let Ok(slot) = load(&*self.fs, &self.path(name)) {
                    slots.insert(name.to_owned(), slot);
                }
                Err(e)
            }
        }
    }

    /// Removes the cursor; `Err(CursorNotFound)` if absent. A corrupt cursor
    /// can be deleted (and created again).
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut slots = self.slots();
        if !slots.contains_key(name) {
            return Err(Error::CursorNotFound {
                name: name.to_owned(),
            });
        }
        let path = self.path(name);
        self.fs.remove(&path).map_err(|e| Error::io(&path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        slots.remove(name);
        Ok(())
    }

    /// Every cursor and its offset, sorted by name; an error if any is corrupt.
    pub fn list(&self) -> Result<Vec<(String, u64)>> {
        self.slots()
            .iter()
            .map(|(name, slot)| match slot {
                Slot::Valid(offset) => Ok((name.clone(), *offset)),
                Slot::Corrupt { path, reason } => Err(Error::corrupt(path, 0, *reason)),
            })
            .collect()
    }

    /// The lowest offset of any cursor; corrupt cursors count as 0 (they hold
    /// everything back until repaired). `None` without cursors.
    pub(crate) fn min_offset(&self) -> Option<u64> {
        self.slots()
            .values()
            .map(|slot| match slot {
                Slot::Valid(offset) => *offset,
                Slot::Corrupt { .. } => 0,
            })
            .min()
    }
}

fn load(fs: &dyn FileSystem, path: &Path) -> Result<Slot> {
    let bytes = crate::log::fs::read_all(fs, path).map_err(|e| Error::io(path, e))?;
    Ok(match decode_cursor(&bytes) {
        Ok(offset) => Slot::Valid(offset),
        Err(reason) => {
            tracing::error!(path = %path.display(), reason, "cursor file is damaged; delete and recreate the cursor");
            Slot::Corrupt {
                path: path.to_owned(),
                reason,
            }
        }
    })
}
