//! GTID state: MySQL executed GTID sets (`uuid:1-100`) and MariaDB GTID lists
//! (`domain-server-seq`), parsed, advanced per transaction and printed.

use std::collections::BTreeMap;
use std::fmt;

/// One MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaGtid {
    /// Replication domain.
    pub domain: u32,
    /// Originating server id.
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// MariaDB GTID position: the last GTID of each domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaGtidList(BTreeMap<u32, MariaGtid>);

impl MariaGtidList {
    /// Parses `0-1-100,1-2-7` (empty text is the empty list).
    pub fn parse(text: &str) -> Option<Self> {
        let mut list = MariaGtidList::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let gtid = MariaGtid {
                domain: it.next()?.parse().ok()?,
                server: it.next()?.parse().ok()?,
                seq: it.next()?.parse().ok()?,
            };
            if it.next().is_some() {
                return None;
            }
            list.apply(gtid);
        }
        Some(list)
    }

    /// Records `gtid` as the latest of its domain.
    pub fn apply(&mut self, gtid: MariaGtid) {
        self.0.insert(gtid.domain, gtid);
    }

    /// Records `gtid` unless its domain already has a later sequence number.
    pub fn apply_if_newer(&mut self, gtid: MariaGtid) {
        if self.0.get(&gtid.domain).is_none_or(|g| g.seq < gtid.seq) {
            self.apply(gtid);
        }
    }

    /// Whether no domain has a GTID yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for MariaGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.0.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

/// One MySQL GTID: `uuid:gno`, or `uuid:tag:gno` for MySQL 8.4 tagged GTIDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MySqlGtid {
    /// Source server UUID.
    pub sid: [u8; 16],
    /// Tag (MySQL 8.4+), lowercase; `None` for untagged GTIDs.
    pub tag: Option<String>,
    /// Transaction number.
    pub gno: u64,
}

impl fmt::Display for MySqlGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_uuid(&self.sid))?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        write!(f, ":{}", self.gno)
    }
}

/// Whether `text` is a valid MySQL GTID tag (`[a-z_][a-z0-9_]{0,31}`, any case).
pub fn is_valid_tag(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && text.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A MySQL GTID set: per source UUID and tag (empty: untagged), sorted disjoint
/// closed intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet(BTreeMap<SidTag, Vec<(u64, u64)>>);

/// A source UUID and a tag (empty for untagged GTIDs).
type SidTag = ([u8; 16], String);

impl GtidSet {
    /// Parses `uuid:1-5:7,uuid2:1-3` and MySQL 8.4 tagged sets such as
    /// `uuid:1-5:etl:1-3:7` (intervals after a tag belong to it; tags are
    /// case-insensitive). Whitespace and newlines are allowed.
    pub fn parse(text: &str) -> Option<Self> {
        let mut set = GtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let sid = parse_uuid(it.next()?.trim())?;
            let mut tag = String::new();
            for item in it.map(str::trim) {
                if item.bytes().next().is_some_and(|b| !b.is_ascii_digit()) {
                    if !is_valid_tag(item) {
                        return None;
                    }
                    tag = item.to_ascii_lowercase();
                    continue;
                }
                let (a, b) = match item.split_once('-') {
                    Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                    None => {
                        let n = item.parse().ok()?;
                        (n, n)
                    }
                };
                if a == 0 || b < a {
                    return None;
                }
                set.add_range(sid, &tag, a, b);
            }
        }
        Some(set)
    }

    /// Adds one GTID.
    pub fn add(&mut self, gtid: &MySqlGtid) {
        let tag = gtid.tag.as_deref().unwrap_or("");
        self.add_range(gtid.sid, tag, gtid.gno, gtid.gno);
    }

    /// Adds the closed interval `start..=end` of `sid` and `tag` (empty: untagged),
    /// merging neighbours.
    pub fn add_range(&mut self, sid: [u8; 16], tag: &str, start: u64, end: u64) {
        let ranges = self.0.entry((sid, tag.to_owned())).or_default();
        // The common case, the next number of the last interval, needs no sort.
        if let Some(last) = ranges.last_mut()
            && start >= last.0
            && start <= last.1.saturating_add(1)
        {
            last.1 = last.1.max(end);
            return;
        }
        ranges.push((start, end));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ranges = merged;
    }

    /// The set as (uuid, tag, intervals) with half-open ends, as
    /// COM_BINLOG_DUMP_GTID wants; the tag is `None` for untagged GTIDs.
    pub fn sids(&self) -> impl Iterator<Item = ([u8; 16], Option<&str>, Vec<(u64, u64)>)> + '_ {
        self.0.iter().map(|((sid, tag), ranges)| {
            (
                *sid,
                (!tag.is_empty()).then_some(tag.as_str()),
                ranges
                    .iter()
                    .map(|&(a, b)| (a, b.saturating_add(1)))
                    .collect(),
            )
        })
    }
}

impl fmt::Display for GtidSet {
    /// MySQL's own form: one entry per UUID, untagged intervals first, then
    /// each tag (sorted) followed by its intervals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last_sid = None;
        for ((sid, tag), ranges) in &self.0 {
            if last_sid != Some(sid) {
                if last_sid.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(&format_uuid(sid))?;
                last_sid = Some(sid);
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(a, b) in ranges {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// Formats 16 bytes as a lowercase hyphenated UUID.
pub fn format_uuid(b: &[u8; 16]) -> String {
    cdc_core::event::uuid_text(b)
}

/// Parses a hyphenated (or plain 32-digit) UUID.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mysql_gtid_sets_merge_adjacent_numbers() {
        let mut set = GtidSet::parse(&format!("{UUID}:1-5:7")).unwrap();
        let sid = parse_uuid(UUID).unwrap();
        let gtid = |gno| MySqlGtid {
            sid,
            tag: None,
            gno,
        };
        set.add(&gtid(6));
        assert_eq!(set.to_string(), format!("{UUID}:1-7"));
        set.add(&gtid(9));
        assert_eq!(set.to_string(), format!("{UUID}:1-7:9"));
        assert_eq!(set.sids().next().unwrap().2, vec![(1, 8), (9, 10)]);
        set.add(&gtid(8));
        assert_eq!(set.to_string(), format!("{UUID}:1-9"));
    }

    #[test]
    fn tagged_gtid_sets_parse_print_and_grow_per_tag() {
        let text = format!("{UUID}:1-5:ETL:1-3:7, {UUID}:_b2:4");
        let mut set = GtidSet::parse(&text).unwrap();
        assert_eq!(set.to_string(), format!("{UUID}:1-5:_b2:4:etl:1-3:7"));
        set.add(&MySqlGtid {
            sid: parse_uuid(UUID).unwrap(),
            tag: Some("etl".into()),
            gno: 4,
        });
        assert_eq!(set.to_string(), format!("{UUID}:1-5:_b2:4:etl:1-4:7"));
        let tags: Vec<Option<&str>> = set.sids().map(|(_, t, _)| t).collect();
        assert_eq!(tags, [None, Some("_b2"), Some("etl")]);
        assert_eq!(GtidSet::parse(&set.to_string()).unwrap(), set);
        let only_tagged = format!("{UUID}:etl:9");
        assert_eq!(
            GtidSet::parse(&only_tagged).unwrap().to_string(),
            only_tagged
        );
    }

    #[test]
    fn malformed_gtid_sets_are_rejected() {
        assert!(GtidSet::parse(&format!("{UUID}:9tag:1")).is_none());
        assert!(GtidSet::parse(&format!("{UUID}:bad-tag:1")).is_none());
        assert!(GtidSet::parse(&format!("{UUID}:{}:1", "t".repeat(33))).is_none());
        assert!(GtidSet::parse("nope:1-2").is_none());
        assert!(GtidSet::parse(&format!("{UUID}:5-2")).is_none());
    }

    #[test]
    fn mariadb_gtid_lists_keep_the_last_gtid_per_domain_sorted() {
        let mut list = MariaGtidList::parse("1-2-7,0-1-100").unwrap();
        list.apply(MariaGtid {
            domain: 0,
            server: 1,
            seq: 101,
        });
        assert_eq!(list.to_string(), "0-1-101,1-2-7");
        assert!(MariaGtidList::parse("0-1").is_none());
        assert!(MariaGtidList::parse("").unwrap().is_empty());
    }
}
