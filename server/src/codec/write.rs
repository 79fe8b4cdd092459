//! The small writers every dialect's packets are made of: MessagePack and
//! JSON strings, string lists, map headers and the `flags` object, written
//! once here so that each dialect only lays out its own packet.
//!
//! Writing into a `Vec<u8>` cannot fail, so these return nothing.

use super::Flags;

/// A length as MessagePack writes it; lengths are bounded by the validated
/// limits, far below `u32::MAX`.
pub fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A MessagePack string.
pub fn mp_str(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

/// A MessagePack array of strings.
pub fn mp_str_array(out: &mut Vec<u8>, items: &[String]) {
    let _ = rmp::encode::write_array_len(out, len32(items.len()));
    for s in items {
        mp_str(out, s);
    }
}

/// A MessagePack array header for `n` items.
pub fn mp_array(out: &mut Vec<u8>, n: u32) {
    let _ = rmp::encode::write_array_len(out, n);
}

/// A MessagePack map header for `n` entries.
pub fn mp_map(out: &mut Vec<u8>, n: u32) {
    let _ = rmp::encode::write_map_len(out, n);
}

/// The `flags` key and its map in MessagePack: only the set flags, as the
/// JavaScript emitter writes them (`volatile` only when true, `compress`
/// whenever it was set).
pub fn mp_flags(out: &mut Vec<u8>, flags: Flags) {
    mp_str(out, "flags");
    let count = u8::from(flags.volatile) + u8::from(flags.compress.is_some());
    out.push(0x80 | count);
    if flags.volatile {
        mp_str(out, "volatile");
        out.push(0xc3);
    }
    if let Some(c) = flags.compress {
        mp_str(out, "compress");
        out.push(if c { 0xc3 } else { 0xc2 });
    }
}

/// A JSON string, escaped as `JSON.stringify` does.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A JSON array of strings.
pub fn json_str_array(out: &mut Vec<u8>, items: &[String]) {
    let _ = serde_json::to_writer(&mut *out, items);
}

/// The `"flags":{…}` member in JSON, the same keys as [`mp_flags`].
pub fn json_flags(out: &mut Vec<u8>, flags: Flags) {
    out.extend_from_slice(br#""flags":{"#);
    if flags.volatile {
        out.extend_from_slice(br#""volatile":true"#);
    }
    if let Some(c) = flags.compress {
        if flags.volatile {
            out.push(b',');
        }
        out.extend_from_slice(if c {
            br#""compress":true"#
        } else {
            br#""compress":false"#
        });
    }
    out.push(b'}');
}
