//! The small file-system surface the log and cursors use, so tests can inject
//! faults (a write that fails, a write torn at a random byte, a failing fsync).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file opened through a [`FileSystem`]. Positional I/O only, so readers and
/// the writer share one handle without a seek position.
pub trait FsFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `pos`; returns how many were read (0 at end).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `pos`. On error, any prefix may have been written.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Writes all of `bufs`, back to back, at `pos`. The default writes them one
    /// by one; implementations may use one vectored call.
    fn write_all_vectored_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        let mut at = pos;
        for buf in bufs {
            self.write_all_at(buf, at)?;
            at += buf.len() as u64;
        }
        Ok(())
    }
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current file length.
    fn size(&self) -> io::Result<u64>;
}

/// Directory-level operations plus opening files.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens a file for reading and writing, creating it when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Lists the entries of a directory (full paths).
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes renames, creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn write_all_vectored_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        // Only the single writer moves this handle's file position (readers use
        // positional reads), so seek + writev is a positional vectored write.
        let mut file = &self.0;
        file.seek(SeekFrom::Start(pos))?;
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match file.write_vectored(slices) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(StdFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            out.push(entry?.path());
        }
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Reads exactly `buf.len()` bytes at `pos`, or fewer only at end of file.
pub(crate) fn read_full(file: &dyn FsFile, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], pos + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Reads a whole small file.
pub(crate) fn read_all(fs: &dyn FileSystem, path: &Path) -> io::Result<Vec<u8>> {
    let file = fs.open(path, false)?;
    let len = usize::try_from(file.size()?).map_err(|_| io::Error::other("file too large"))?;
    let mut buf = vec![0u8; len];
    let n = read_full(&*file, &mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

/// Replaces `path` atomically: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory.
pub(crate) fn replace_file(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = fs.open(&tmp, true)?;
    file.set_len(0)?;
    file.write_all_at(bytes, 0)?;
    file.sync_data()?;
    drop(file);
    fs.rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs.sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(any(test, feature = "internals"))]
pub use fault::{FaultFs, FaultPlan};

#[cfg(any(test, feature = "internals"))]
mod fault {
    use super::*;
    use std::sync::Mutex;

    /// What a [`FaultFs`] does to writes and syncs.
    #[derive(Debug, Default, Clone)]
    pub struct FaultPlan {
        /// Writes succeed until this many more bytes have been written; the write
        /// that crosses the budget writes only the bytes that fit (a torn write)
        /// and fails, and so does every later write and sync.
        pub write_budget: Option<u64>,
        /// Every `sync_data` and `sync_dir` fails.
        pub fail_syncs: bool,
        /// Every `sync_data` and `sync_dir` waits while this is set, like a
        /// stalled disk, and goes on once a new plan clears it.
        pub hold_syncs: bool,
    }

    /// A [`FileSystem`] over the real one that fails or tears writes on demand.
    #[derive(Debug, Clone, Default)]
    pub struct FaultFs {
        plan: Arc<Mutex<FaultState>>,
    }

    #[derive(Debug, Default)]
    struct FaultState {
        plan: FaultPlan,
        tripped: bool,
    }

    impl FaultFs {
        /// A fault file system following `plan`.
        pub fn new(plan: FaultPlan) -> Self {
            Self {
                plan: Arc::new(Mutex::new(FaultState {
                    plan,
                    tripped: false,
                })),
            }
        }

        /// Replaces the plan (and clears a tripped fault), e.g. to arm it later.
        pub fn set_plan(&self, plan: FaultPlan) {
            let mut state = self.lock();
            state.plan = plan;
            state.tripped = false;
        }

        /// Whether a fault has been injected yet.
        pub fn tripped(&self) -> bool {
            self.lock().tripped
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
            self.plan.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// How many bytes of a `len`-byte write may go through; `Err` if it must fail.
        fn admit(&self, len: usize) -> Result<(), usize> {
            let mut state = self.lock();
            if state.tripped {
                return Err(0);
            }
            match state.plan.write_budget {
                Some(budget) if (len as u64) > budget => {
                    state.tripped = true;
                    state.plan.write_budget = Some(0);
                    Err(budget as usize)
                }
                Some(budget) => {
                    state.plan.write_budget = Some(budget - len as u64);
                    Ok(())
                }
                None => Ok(()),
            }
        }

        fn sync_fault(&self) -> io::Result<()> {
            while self.lock().plan.hold_syncs {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let state = self.lock();
            if state.tripped || state.plan.fail_syncs {
                return Err(io::Error::other("injected fsync failure"));
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    struct FaultFile {
        inner: Arc<dyn FsFile>,
        fs: FaultFs,
    }

    impl FsFile for FaultFile {
        fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
            self.inner.read_at(buf, pos)
        }
        fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
            match self.fs.admit(buf.len()) {
                Ok(()) => self.inner.write_all_at(buf, pos),
                Err(prefix) => {
                    self.inner
                        .write_all_at(&buf[..prefix.min(buf.len())], pos)?;
                    Err(io::Error::other("injected write failure"))
                }
            }
        }
        fn sync_data(&self) -> io::Result<()> {
            self.fs.sync_fault()?;
            self.inner.sync_data()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            if self.fs.tripped() {
                return Err(io::Error::other("injected truncate failure"));
            }
            self.inner.set_len(len)
        }
        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
    }

    impl FileSystem for FaultFs {
        fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>> {
            Ok(Arc::new(FaultFile {
                inner: StdFs.open(path, create)?,
                fs: self.clone(),
            }))
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            if self.tripped() {
                return Err(io::Error::other("injected rename failure"));
            }
            StdFs.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            if self.tripped() {
                return Err(io::Error::other("injected remove failure"));
            }
            StdFs.remove(path)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            StdFs.list(dir)
        }
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdFs.create_dir_all(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.sync_fault()?;
            StdFs.sync_dir(dir)
        }
    }
}
