//! Binlog temporal formats (MySQL 5.6.4+ `TIME2`, `DATETIME2`, `TIMESTAMP2`
//! and the old ones) to the event model's integer units.

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Largest year MySQL and MariaDB store.
const MAX_YEAR: u64 = 9999;

/// A calendar date, or `None` for zero and partial dates (`0000-00-00`,
/// `2020-00-00`) that have no day number; an error past year 9999, which no
/// server writes (and which could overflow the microsecond arithmetic).
fn date_days(y: u64, m: u32, d: u32) -> Decoded<Option<i64>> {
    if y > MAX_YEAR {
        return Err(DecodeError::new(format!("year {y} is beyond {MAX_YEAR}")));
    }
    if m == 0 || m > 12 || d == 0 || d > 31 {
        return Ok(None);
    }
    Ok(Some(days_from_civil(y as i64, m, d)))
}

/// Reads the fractional part of width `fsp` as microseconds (unsigned formats).
fn frac_micros(c: &mut Cursor<'_>, fsp: u8) -> Decoded<i64> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1)? as i64 * 10_000,
        3 | 4 => c.uint_be(2)? as i64 * 100,
        5 | 6 => c.uint_be(3)? as i64,
        _ => {
            return Err(DecodeError::new(format!(
                "fractional precision {fsp} over 6"
            )));
        }
    })
}

/// `DATE` (3 bytes): days since the epoch, `None` for zero dates.
pub fn read_date(c: &mut Cursor<'_>) -> Decoded<Option<i32>> {
    let v = c.uint_le(3)? as u32;
    let days = date_days(u64::from(v >> 9), (v >> 5) & 15, v & 31)?;
    // Years up to 9999 are about 3M days from the epoch: always an i32.
    Ok(days.and_then(|d| i32::try_from(d).ok()))
}

/// `DATETIME2(fsp)`: microseconds since the epoch, wall clock; `None` for zero dates.
pub fn read_datetime2(c: &mut Cursor<'_>, fsp: u8) -> Decoded<Option<i64>> {
    let int = c.uint_be(5)? as i64 - 0x80_0000_0000;
    let frac = frac_micros(c, fsp)?;
    if int < 0 {
        return Err(DecodeError::new("negative datetime"));
    }
    let ymd = int >> 17;
    let ym = ymd >> 5;
    let hms = int & 0x1ffff;
    let (y, m, d) = ((ym / 13) as u64, (ym % 13) as u32, (ymd & 31) as u32);
    let (h, mi, s) = (hms >> 12, (hms >> 6) & 63, hms & 63);
    Ok(date_days(y, m, d)?
        .map(|days| ((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000) + frac))
}

/// Old `DATETIME` (8 bytes, `YYYYMMDDhhmmss` as a number).
pub fn read_datetime(c: &mut Cursor<'_>) -> Decoded<Option<i64>> {
    let v = c.u64()?;
    let (date, time) = (v / 1_000_000, v % 1_000_000);
    let (y, m, d) = (
        date / 10_000,
        ((date / 100) % 100) as u32,
        (date % 100) as u32,
    );
    let (h, mi, s) = (
        (time / 10_000) as i64,
        ((time / 100) % 100) as i64,
        (time % 100) as i64,
    );
    Ok(date_days(y, m, d)?.map(|days| (days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000))
}

/// `TIMESTAMP2(fsp)`: microseconds since the epoch UTC; `None` for the zero timestamp.
pub fn read_timestamp2(c: &mut Cursor<'_>, fsp: u8) -> Decoded<Option<i64>> {
    let secs = c.uint_be(4)? as i64;
    let frac = frac_micros(c, fsp)?;
    Ok((secs != 0 || frac != 0).then_some(secs * 1_000_000 + frac))
}

/// `TIME2(fsp)`: signed microseconds; may be negative or exceed 24 hours.
pub fn read_time2(c: &mut Cursor<'_>, fsp: u8) -> Decoded<i64> {
    let packed: i64 = match fsp {
        0 => (c.uint_be(3)? as i64 - 0x80_0000) << 24,
        1 | 2 => {
            let mut int = c.uint_be(3)? as i64 - 0x80_0000;
            let mut frac = c.uint_be(1)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = c.uint_be(3)? as i64 - 0x80_0000;
            let mut frac = c.uint_be(2)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => c.uint_be(6)? as i64 - 0x8000_0000_0000,
        _ => {
            return Err(DecodeError::new(format!(
                "fractional precision {fsp} over 6"
            )));
        }
    };
    let negative = packed < 0;
    let abs = packed.unsigned_abs();
    let hms = abs >> 24;
    let micros = (abs & 0xff_ffff) as i64;
    let (h, m, s) = ((hms >> 12) & 0x3ff, (hms >> 6) & 0x3f, hms & 0x3f);
    let total = (h as i64 * 3600 + m as i64 * 60 + s as i64) * 1_000_000 + micros;
    Ok(if negative { -total } else { total })
}

/// Old `TIME` (3 bytes, `±hhmmss` as a number).
pub fn read_time(c: &mut Cursor<'_>) -> Decoded<i64> {
    let raw = c.uint_le(3)? as i64;
    // Sign-extend the 24-bit value.
    let v = if raw & 0x80_0000 != 0 {
        raw - 0x100_0000
    } else {
        raw
    };
    let a = v.abs();
    let total = ((a / 10_000) * 3600 + ((a / 100) % 100) * 60 + a % 100) * 1_000_000;
    Ok(if v < 0 { -total } else { total })
}

/// Encodes a `TIME2(fsp)` value (tests and fixtures only).
#[doc(hidden)]
pub fn encode_time2(micros: i64, fsp: u8) -> Vec<u8> {
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    let frac = (abs % 1_000_000) as i64;
    let hms = ((secs / 3600) << 12) | (((secs / 60) % 60) << 6) | (secs % 60);
    let mut packed = ((hms as i64) << 24) + frac;
    if micros < 0 {
        packed = -packed;
    }
    match fsp {
        0 => ((packed >> 24) + 0x80_0000).to_be_bytes()[5..].to_vec(),
        // As my_time_packed_to_binary: the integer part is an arithmetic shift,
        // the fraction C's truncating remainder.
        1 | 2 => {
            let mut out = ((packed >> 24) + 0x80_0000).to_be_bytes()[5..].to_vec();
            out.push(((packed % (1 << 24)) / 10_000) as i8 as u8);
            out
        }
        3 | 4 => {
            let mut out = ((packed >> 24) + 0x80_0000).to_be_bytes()[5..].to_vec();
            out.extend_from_slice(&(((packed % (1 << 24)) / 100) as i16 as u16).to_be_bytes());
            out
        }
        _ => (packed + 0x8000_0000_0000).to_be_bytes()[2..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time2(micros: i64, fsp: u8) -> i64 {
        read_time2(&mut Cursor::new(&encode_time2(micros, fsp)), fsp).unwrap()
    }

    #[test]
    fn negative_and_over_24h_times_keep_sign_and_fraction() {
        let t = |h: i64, m: i64, s: i64, us: i64| ((h * 3600 + m * 60 + s) * 1_000_000) + us;
        for fsp in 0..=6u8 {
            let us = match fsp {
                0 => 0,
                1 | 2 => 120_000,
                3 | 4 => 123_400,
                _ => 123_456,
            };
            assert_eq!(
                time2(t(838, 59, 59, us), fsp),
                t(838, 59, 59, us),
                "fsp {fsp}"
            );
            assert_eq!(
                time2(-t(838, 59, 59, us), fsp),
                -t(838, 59, 59, us),
                "fsp {fsp}"
            );
            assert_eq!(time2(-t(0, 0, 1, us), fsp), -t(0, 0, 1, us), "fsp {fsp}");
            assert_eq!(time2(0, fsp), 0);
        }
    }

    #[test]
    fn the_mysql_source_example_time_decodes() {
        // '-00:00:00.000001' with fsp 6 from my_time.cc's comments is 0x7fffffffffff.
        let bytes = [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(read_time2(&mut Cursor::new(&bytes), 6).unwrap(), -1);
    }

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }

    #[test]
    fn zero_dates_have_no_day_number() {
        assert_eq!(read_date(&mut Cursor::new(&[0, 0, 0])).unwrap(), None);
        let v: u32 = (2024 << 9) | (2 << 5) | 29;
        let b = v.to_le_bytes();
        let days = read_date(&mut Cursor::new(&b[..3])).unwrap().unwrap();
        assert_eq!(i64::from(days), days_from_civil(2024, 2, 29));
    }

    #[test]
    fn years_past_9999_are_rejected_not_overflowed() {
        // Old DATETIME 20240229123456 decodes; one with a 19-digit year does not.
        let ok = read_datetime(&mut Cursor::new(&20_240_229_123_456u64.to_le_bytes())).unwrap();
        let expected =
            (days_from_civil(2024, 2, 29) * 86_400 + 12 * 3600 + 34 * 60 + 56) * 1_000_000;
        assert_eq!(ok, Some(expected));
        let huge = u64::MAX.to_le_bytes();
        assert!(read_datetime(&mut Cursor::new(&huge)).is_err());
        // DATETIME2 with year 10000.
        let ym: i64 = 10_000 * 13 + 1;
        let int = ((ym << 5 | 1) << 17) + 0x80_0000_0000;
        let bytes = &int.to_be_bytes()[3..];
        assert!(read_datetime2(&mut Cursor::new(bytes), 0).is_err());
    }
}
