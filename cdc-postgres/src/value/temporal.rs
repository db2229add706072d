//! PostgreSQL temporal text forms (`DateStyle=ISO`, `IntervalStyle=iso_8601`,
//! `TimeZone=UTC`) to microsecond integers.

use cdc_core::event::Value;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 18 {
        return None;
    }
    s.parse().ok()
}

/// Splits a trailing " BC" off.
fn era(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` (year may have more than four digits) to days since the epoch.
fn date_days(text: &str, bc: bool) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year = digits(parts.next()?)?;
    let month = u32::try_from(digits(parts.next()?)?).ok()?;
    let day = u32::try_from(digits(parts.next()?)?).ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if bc { 1 - year } else { year };
    Some(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.ffffff]` to microseconds since midnight; `24:00:00` is the
/// latest PostgreSQL allows.
fn time_micros(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let sec = parts.next()?;
    let (s, frac) = match sec.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (sec, None),
    };
    let s = digits(s)?;
    if h > 24 || m > 59 || s > 60 {
        return None;
    }
    let mut micros = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 {
            return None;
        }
        micros = digits(f)? * 10i64.pow(6 - f.len() as u32);
    }
    Some(((h * 60 + m) * 60 + s) * MICROS_PER_SEC + micros)
}

/// A zone offset `+HH[:MM[:SS]]` / `-HH...` to seconds east of UTC.
fn offset_secs(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let mut total = 0i64;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 {
            return None;
        }
        total += digits(part)? * [3600, 60, 1][i];
    }
    i32::try_from(sign * total).ok()
}

/// Finds where a trailing zone offset starts in `HH:MM:SS.ffff+05:30`.
fn split_offset(text: &str) -> Option<(&str, &str)> {
    let at = text.rfind(['+', '-'])?;
    Some((&text[..at], &text[at..]))
}

/// Text of a `date` value.
pub(crate) fn date(text: &str) -> Option<Value> {
    match text {
        "infinity" => return Some(Value::Date(Value::INFINITY_DAYS)),
        "-infinity" => return Some(Value::Date(i32::MIN)),
        _ => {}
    }
    let (text, bc) = era(text);
    Some(Value::Date(i32::try_from(date_days(text, bc)?).ok()?))
}

/// Text of a `time` value.
pub(crate) fn time(text: &str) -> Option<Value> {
    Some(Value::Time(time_micros(text)?))
}

/// Text of a `timetz` value.
pub(crate) fn timetz(text: &str) -> Option<Value> {
    let (time, offset) = split_offset(text)?;
    Some(Value::TimeTz {
        micros: time_micros(time)?,
        offset_secs: offset_secs(offset)?,
    })
}

fn timestamp_micros(text: &str) -> Option<i64> {
    let (text, bc) = era(text);
    let (date, time) = text.split_once(' ')?;
    let days = date_days(date, bc)?;
    days.checked_mul(SECS_PER_DAY * MICROS_PER_SEC)?
        .checked_add(time_micros(time)?)
}

/// Text of a `timestamp` value.
pub(crate) fn timestamp(text: &str) -> Option<Value> {
    match text {
        "infinity" => Some(Value::Timestamp(Value::INFINITY_MICROS)),
        "-infinity" => Some(Value::Timestamp(i64::MIN)),
        _ => Some(Value::Timestamp(timestamp_micros(text)?)),
    }
}

/// Text of a `timestamptz` value (any offset; normalized to UTC).
pub(crate) fn timestamptz(text: &str) -> Option<Value> {
    match text {
        "infinity" => return Some(Value::TimestampTz(Value::INFINITY_MICROS)),
        "-infinity" => return Some(Value::TimestampTz(i64::MIN)),
        _ => {}
    }
    let (body, bc) = era(text);
    let (date, rest) = body.split_once(' ')?;
    let (time, offset) = split_offset(rest)?;
    let local = date_days(date, bc)?
        .checked_mul(SECS_PER_DAY * MICROS_PER_SEC)?
        .checked_add(time_micros(time)?)?;
    let offset = i64::from(offset_secs(offset)?) * MICROS_PER_SEC;
    Some(Value::TimestampTz(local.checked_sub(offset)?))
}

/// Text of an `interval` in `IntervalStyle=iso_8601` (`P1Y2M3DT4H5M6.5S`, parts
/// may be negative).
pub(crate) fn interval(text: &str) -> Option<Value> {
    let body = text.strip_prefix('P')?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    for (number, unit) in iso_parts(date_part)? {
        let n = whole(number)?;
        match unit {
            'Y' => months = months.checked_add(n.checked_mul(12)?)?,
            'M' => months = months.checked_add(n)?,
            'W' => days = days.checked_add(n.checked_mul(7)?)?,
            'D' => days = days.checked_add(n)?,
            _ => return None,
        }
    }
    if let Some(t) = time_part {
        for (number, unit) in iso_parts(t)? {
            let part = match unit {
                'H' => whole(number)?.checked_mul(3600 * MICROS_PER_SEC)?,
                'M' => whole(number)?.checked_mul(60 * MICROS_PER_SEC)?,
                'S' => seconds(number)?,
                _ => return None,
            };
            micros = micros.checked_add(part)?;
        }
    }
    Some(Value::Interval {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        micros,
    })
}

fn iso_parts(text: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphabetic() {
            out.push((&text[start..i], c));
            start = i + 1;
        }
    }
    (start == text.len()).then_some(out)
}

fn whole(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => digits(rest).map(|n| -n),
        None => digits(text),
    }
}

/// Seconds with up to six fractional digits, signed, to microseconds.
fn seconds(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (s, frac) = match unsigned.split_once('.') {
        Some((s, f)) => (s, f),
        None => (unsigned, ""),
    };
    if frac.len() > 6 {
        return None;
    }
    let mut micros = digits(s)?.checked_mul(MICROS_PER_SEC)?;
    if !frac.is_empty() {
        micros += digits(frac)? * 10i64.pow(6 - frac.len() as u32);
    }
    Some(if negative { -micros } else { micros })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_unix_epoch_including_bc_and_infinity() {
        assert_eq!(date("1970-01-01"), Some(Value::Date(0)));
        assert_eq!(date("2000-03-01"), Some(Value::Date(11017)));
        assert_eq!(date("1969-12-31"), Some(Value::Date(-1)));
        assert_eq!(date("0001-12-31 BC"), Some(Value::Date(-719163)));
        assert_eq!(date("infinity"), Some(Value::Date(i32::MAX)));
        assert_eq!(date("2000-13-01"), None);
    }

    #[test]
    fn timestamps_keep_microseconds_and_normalize_offsets_to_utc() {
        assert_eq!(
            timestamp("1970-01-02 00:00:01.5"),
            Some(Value::Timestamp(86_401_500_000))
        );
        assert_eq!(
            timestamptz("1970-01-01 05:30:00+05:30"),
            Some(Value::TimestampTz(0))
        );
        assert_eq!(timestamptz("-infinity"), Some(Value::TimestampTz(i64::MIN)));
    }

    #[test]
    fn time_with_zone_keeps_local_time_and_offset_east() {
        assert_eq!(
            timetz("10:00:00.000001-03"),
            Some(Value::TimeTz {
                micros: 36_000_000_001,
                offset_secs: -10800
            })
        );
        assert_eq!(time("24:00:00"), Some(Value::Time(86_400_000_000)));
        // Out of range, not overflowed (found by fuzzing).
        assert_eq!(time("2000000000000000:00:00"), None);
        assert_eq!(time("12:60:00"), None);
    }

    #[test]
    fn iso_intervals_keep_months_days_and_micros_apart() {
        assert_eq!(
            interval("P1Y2M3DT4H5M6.5S"),
            Some(Value::Interval {
                months: 14,
                days: 3,
                micros: 14_706_500_000
            })
        );
        assert_eq!(
            interval("P-1M-2DT-0.000001S"),
            Some(Value::Interval {
                months: -1,
                days: -2,
                micros: -1
            })
        );
        assert_eq!(
            interval("PT0S"),
            Some(Value::Interval {
                months: 0,
                days: 0,
                micros: 0
            })
        );
        assert_eq!(interval("1 day"), None);
    }
}
