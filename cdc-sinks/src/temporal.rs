//! Text forms of the event model's temporal values, for destinations without
//! native types (SQLite, JSON lines) and for MySQL parameters.
//!
//! Forms (ISO 8601, microseconds always written):
//!
//! | value         | text                                   |
//! |---------------|----------------------------------------|
//! | `Date`        | `2024-02-29` (`infinity`, `-infinity`) |
//! | `Time`        | `13:05:09.000001`, `-838:59:59.000000` |
//! | `TimeTz`      | `13:05:09.000001+02:00`                |
//! | `Timestamp`   | `2024-02-29 13:05:09.000001`           |
//! | `TimestampTz` | `2024-02-29 13:05:09.000001+00:00` (UTC) |
//! | `Interval`    | `P14M3DT3723.000007S` (parts kept apart, may be negative) |

use cdc_core::event::Value;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A broken-down civil date and time (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

/// Converts days since 1970-01-01 to (year, month, day) (Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Breaks microseconds since the epoch into civil parts.
pub(crate) fn civil_from_micros(micros: i64) -> Civil {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (rest / 3_600_000_000) as u32,
        minute: (rest / 60_000_000 % 60) as u32,
        second: (rest / 1_000_000 % 60) as u32,
        micros: (rest % 1_000_000) as u32,
    }
}

fn year_text(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+05}")
    }
}

/// `YYYY-MM-DD`, or `infinity` / `-infinity`.
pub(crate) fn date_text(days: i32) -> String {
    match days {
        Value::INFINITY_DAYS => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (y, m, d) = civil_from_days(i64::from(days));
            format!("{}-{m:02}-{d:02}", year_text(y))
        }
    }
}

/// `[-]HH:MM:SS.ffffff`; hours may exceed 23.
pub(crate) fn time_text(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!(
        "{sign}{:02}:{:02}:{:02}.{:06}",
        m / 3_600_000_000,
        m / 60_000_000 % 60,
        m / 1_000_000 % 60,
        m % 1_000_000
    )
}

/// `+HH:MM` for an offset east of UTC in seconds.
pub(crate) fn offset_text(offset_secs: i32) -> String {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let o = offset_secs.unsigned_abs();
    if o.is_multiple_of(60) {
        format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60)
    } else {
        format!("{sign}{:02}:{:02}:{:02}", o / 3600, o / 60 % 60, o % 60)
    }
}

/// `HH:MM:SS.ffffff+HH:MM`.
pub(crate) fn timetz_text(micros: i64, offset_secs: i32) -> String {
    format!("{}{}", time_text(micros), offset_text(offset_secs))
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, or `infinity` / `-infinity`.
pub(crate) fn timestamp_text(micros: i64) -> String {
    match micros {
        Value::INFINITY_MICROS => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let c = civil_from_micros(micros);
            format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
                year_text(c.year),
                c.month,
                c.day,
                c.hour,
                c.minute,
                c.second,
                c.micros
            )
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00:00` (UTC), or `infinity` / `-infinity`.
pub(crate) fn timestamptz_text(micros: i64) -> String {
    match micros {
        Value::INFINITY_MICROS | i64::MIN => timestamp_text(micros),
        _ => format!("{}+00:00", timestamp_text(micros)),
    }
}

/// ISO 8601 duration with months, days and seconds kept apart.
pub(crate) fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!(
        "P{months}M{days}DT{sign}{}.{:06}S",
        m / 1_000_000,
        m % 1_000_000
    )
}

pub(crate) use cdc_core::event::uuid_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_around_the_epoch_and_leap_days_format_exactly() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(-1), "1969-12-31");
        assert_eq!(date_text(19_782), "2024-02-29");
        assert_eq!(date_text(i32::MAX), "infinity");
        assert_eq!(date_text(-719_528), "0000-01-01");
    }

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(timestamp_text(1), "1970-01-01 00:00:00.000001");
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(
            timestamptz_text(1_709_211_909_000_001),
            "2024-02-29 13:05:09.000001+00:00"
        );
    }

    #[test]
    fn times_may_be_negative_or_past_a_day() {
        assert_eq!(time_text(-3_020_399_000_000), "-838:59:59.000000");
        assert_eq!(
            timetz_text(3_600_000_000, -5 * 3600),
            "01:00:00.000000-05:00"
        );
        assert_eq!(interval_text(14, -3, -1_500_000), "P14M-3DT-1.500000S");
    }

    #[test]
    fn uuid_text_is_hyphenated_lowercase() {
        let b = [0xAB; 16];
        assert_eq!(uuid_text(&b), "abababab-abab-abab-abab-abababababab");
    }
}
