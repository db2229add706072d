//! Retention: which sealed segments may go, and removing them safely.

use std::time::Duration;

use super::Shared;
use super::segment::{offset_index_path, time_index_path};
use crate::error::{Error, Result};
use crate::event::now_micros;

impl Shared {
    pub(crate) fn apply_retention(&self) -> Result<usize> {
        let policy = &self.config.retention;
        if policy.max_bytes.is_none() && policy.max_age.is_none() {
            return Ok(0);
        }
        let min_cursor = self.cursors.min_offset();
        let segments = self.segments().clone();
        let sizes: Vec<(u64, u64, i64)> = segments
            .iter()
            .map(|s| {
                let idx = s.index();
                (idx.len, idx.next, idx.last_ts)
            })
            .collect();
        let mut total: u64 = sizes.iter().map(|s| s.0).sum();
        let age_limit = policy.max_age.map(|age: Duration| {
            now_micros().saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX))
        });
        let mut remove = 0;
        // The last segment is the active one and is never removed.
        for &(len, end, last_ts) in sizes.iter().take(sizes.len().saturating_sub(1)) {
            if min_cursor.is_some_and(|c| c < end) {
                break;
            }
            let over_size = policy.max_bytes.is_some_and(|max| total > max);
            let too_old = age_limit.is_some_and(|limit| last_ts < limit);
            if !(over_size || too_old) {
                break;
            }
            total -= len;
            remove += 1;
        }
        if remove == 0 {
            return Ok(0);
        }
        // The catalog must hold the removed segments' schemas before they go.
        {
            let catalog = self.catalog();
            catalog.store(&*self.fs, &self.dir)?;
        }
        {
            let mut list = self.segments_mut();
            let first = list.first().map(|s| s.base);
            if first != segments.first().map(|s| s.base) {
                // Another retention pass got here first; let the caller retry.
                return Ok(0);
            }
            list.drain(..remove);
        }
        for segment in &segments[..remove] {
            self.fs
                .remove(&segment.path)
                .map_err(|e| Error::io(&segment.path, e))?;
            for path in [
                offset_index_path(&self.dir, segment.base),
                time_index_path(&self.dir, segment.base),
            ] {
                match self.fs.remove(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
            tracing::info!(
                base = segment.base,
                "removed a change log segment by retention"
            );
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        Ok(remove)
    }
}
