//! MySQL's binary JSON format to compact JSON text. Every offset and length is
//! checked against the value's bounds and nesting depth is limited, so a
//! malformed document is an error, never a panic or a stack overflow.

use std::fmt::Write as _;

use crate::binlog::cursor::{Cursor, DecodeError, Decoded};

pub(super) const MAX_DEPTH: usize = 150;

/// Converts a binary JSON document to JSON text. An empty document is `null`
/// (MySQL writes an empty value for a JSON NULL literal in some paths).
pub fn to_text(doc: &[u8]) -> Decoded<String> {
    let mut out = String::with_capacity(doc.len() * 2);
    let Some((&ty, body)) = doc.split_first() else {
        return Ok("null".to_owned());
    };
    write_value(ty, body, 0, &mut out)?;
    Ok(out)
}

fn err(reason: &str) -> DecodeError {
    DecodeError::new(format!("binary json: {reason}"))
}

fn slice_from(buf: &[u8], offset: usize) -> Decoded<&[u8]> {
    buf.get(offset..).ok_or_else(|| err("offset past the end"))
}

fn write_value(ty: u8, buf: &[u8], depth: usize, out: &mut String) -> Decoded<()> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let mut c = Cursor::new(buf);
    match ty {
        0x00 => write_container(buf, false, true, depth, out),
        0x01 => write_container(buf, true, true, depth, out),
        0x02 => write_container(buf, false, false, depth, out),
        0x03 => write_container(buf, true, false, depth, out),
        0x04 => {
            out.push_str(match c.u8()? {
                0 => "null",
                1 => "true",
                2 => "false",
                _ => return Err(err("unknown literal")),
            });
            Ok(())
        }
        0x05 => push_display(out, c.u16()? as i16),
        0x06 => push_display(out, c.u16()?),
        0x07 => push_display(out, c.u32()? as i32),
        0x08 => push_display(out, c.u32()?),
        0x09 => push_display(out, c.u64()? as i64),
        0x0a => push_display(out, c.u64()?),
        0x0b => {
            let v = f64::from_bits(c.u64()?);
            let n = serde_json::Number::from_f64(v).ok_or_else(|| err("non-finite double"))?;
            push_display(out, n)
        }
        0x0c => {
            let len = read_varlen(&mut c)?;
            let s = std::str::from_utf8(c.take(len)?).map_err(|_| err("string not UTF-8"))?;
            push_string(out, s);
            Ok(())
        }
        0x0f => write_opaque(&mut c, out),
        _ => Err(err("unknown value type")),
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) -> Decoded<()> {
    let _ = write!(out, "{v}");
    Ok(())
}

pub(super) fn push_string(out: &mut String, s: &str) {
    // serde_json's escaping of a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn read_varlen(c: &mut Cursor<'_>) -> Decoded<usize> {
    let mut len = 0usize;
    for i in 0..5 {
        let b = c.u8()?;
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(len);
        }
    }
    Err(err("variable length over 5 bytes"))
}

fn write_container(
    buf: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    out: &mut String,
) -> Decoded<()> {
    let w = if large { 4 } else { 2 };
    let mut c = Cursor::new(buf);
    let count = c.uint_le(w)? as usize;
    let size = c.uint_le(w)? as usize;
    if size > buf.len() {
        return Err(err("container size past the end"));
    }
    let buf = &buf[..size];
    let key_entry = if large { 6 } else { 4 };
    let value_entry = 1 + w;
    let header = 2 * w + count.saturating_mul(value_entry + if object { key_entry } else { 0 });
    if header > size {
        return Err(err("container header past its size"));
    }
    let keys = &buf[2 * w..];
    let values = &buf[2 * w + if object { count * key_entry } else { 0 }..];
    out.push(if object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        if object {
            let mut k = Cursor::new(slice_from(keys, i * key_entry)?);
            let offset = k.uint_le(w)? as usize;
            let len = usize::from(k.u16()?);
            let key = slice_from(buf, offset)?
                .get(..len)
                .ok_or_else(|| err("key past the end"))?;
            let key = std::str::from_utf8(key).map_err(|_| err("key not UTF-8"))?;
            push_string(out, key);
            out.push(':');
        }
        let mut v = Cursor::new(slice_from(values, i * value_entry)?);
        let ty = v.u8()?;
        let inlined = matches!(ty, 0x04..=0x06) || (large && matches!(ty, 0x07 | 0x08));
        if inlined {
            write_value(ty, v.take(w)?, depth + 1, out)?;
        } else {
            let offset = v.uint_le(w)? as usize;
            write_value(ty, slice_from(buf, offset)?, depth + 1, out)?;
        }
    }
    out.push(if object { '}' } else { ']' });
    Ok(())
}

fn write_opaque(c: &mut Cursor<'_>, out: &mut String) -> Decoded<()> {
    let field_type = c.u8()?;
    let len = read_varlen(c)?;
    let data = c.take(len)?;
    let mut d = Cursor::new(data);
    match field_type {
        // DECIMAL: precision, scale, binary decimal.
        246 => {
            let (p, s) = (d.u8()?, d.u8()?);
            out.push_str(&super::decimal::read(&mut d, p, s)?);
        }
        // DATE, DATETIME, TIMESTAMP: packed longlong.
        10 | 12 | 7 | 18 | 17 => {
            let packed = d.u64()? as i64;
            push_string(out, &packed_datetime(packed, field_type == 10));
        }
        // TIME: packed longlong.
        11 | 19 => {
            let packed = d.u64()? as i64;
            push_string(out, &packed_time(packed));
        }
        _ => {
            // Other opaque values (binary strings, geometry): MySQL prints them as
            // base64 with a type prefix.
            let text = format!("base64:type{field_type}:{}", base64(data));
            push_string(out, &text);
        }
    }
    Ok(())
}

fn packed_datetime(packed: i64, date_only: bool) -> String {
    let int = packed >> 24;
    let us = packed & 0xff_ffff;
    let ymd = int >> 17;
    let ym = ymd >> 5;
    let hms = int & 0x1ffff;
    let date = format!("{:04}-{:02}-{:02}", ym / 13, ym % 13, ymd & 31);
    if date_only {
        return date;
    }
    let time = format!("{:02}:{:02}:{:02}", hms >> 12, (hms >> 6) & 63, hms & 63);
    if us == 0 {
        format!("{date} {time}")
    } else {
        format!("{date} {time}.{us:06}")
    }
}

fn packed_time(packed: i64) -> String {
    let sign = if packed < 0 { "-" } else { "" };
    let abs = packed.unsigned_abs();
    let hms = abs >> 24;
    let us = abs & 0xff_ffff;
    let t = format!(
        "{sign}{:02}:{:02}:{:02}",
        (hms >> 12) & 0x3ff,
        (hms >> 6) & 0x3f,
        hms & 0x3f
    );
    if us == 0 { t } else { format!("{t}.{us:06}") }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_object_with_nested_array_and_scalars_decodes() {
        // {"a": [1, "x"], "b": true} built by hand from the documented layout.
        let mut arr = vec![];
        arr.extend(2u16.to_le_bytes()); // count
        arr.extend(0u16.to_le_bytes()); // size, patched below
        arr.extend([0x05, 1, 0]); // int16 1 inlined
        arr.extend([0x0c, 10, 0]); // string at offset 10
        arr.extend([1, b'x']);
        let arr_len = arr.len() as u16;
        arr[2..4].copy_from_slice(&arr_len.to_le_bytes());

        let mut obj = vec![];
        obj.extend(2u16.to_le_bytes());
        obj.extend(0u16.to_le_bytes());
        let keys_at = 4 + 2 * 4 + 2 * 3;
        obj.extend((keys_at as u16).to_le_bytes());
        obj.extend(1u16.to_le_bytes());
        obj.extend((keys_at as u16 + 1).to_le_bytes());
        obj.extend(1u16.to_le_bytes());
        obj.extend([0x02]);
        obj.extend((keys_at as u16 + 2).to_le_bytes());
        obj.extend([0x04, 1, 0]);
        obj.extend(b"ab");
        obj.extend(&arr);
        let size = obj.len() as u16;
        obj[2..4].copy_from_slice(&size.to_le_bytes());

        let mut doc = vec![0x00];
        doc.extend(obj);
        assert_eq!(to_text(&doc).unwrap(), r#"{"a":[1,"x"],"b":true}"#);
    }

    #[test]
    fn scalars_decode() {
        assert_eq!(to_text(&[0x04, 0]).unwrap(), "null");
        let mut d = vec![0x0a];
        d.extend(u64::MAX.to_le_bytes());
        assert_eq!(to_text(&d).unwrap(), "18446744073709551615");
        let mut d = vec![0x0b];
        d.extend(1.5f64.to_le_bytes());
        assert_eq!(to_text(&d).unwrap(), "1.5");
        assert_eq!(to_text(&[0x0c, 2, b'"', b'e']).unwrap(), r#""\"e""#);
    }

    #[test]
    fn bad_offsets_and_deep_nesting_are_errors() {
        assert!(to_text(&[0x02, 1, 0, 200, 0]).is_err());
        assert!(to_text(&[0x02, 1, 0, 7, 0, 0x02, 250, 0]).is_err());
        // An array whose only element points back at itself recurses until the limit.
        assert!(to_text(&[0x02, 1, 0, 7, 0, 0x02, 0, 0]).is_err());
        assert!(to_text(&[0x0c, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
