//! Durations and byte sizes as Compose parses and prints them.
//!
//! - Durations use Go's syntax (`1m30s`, `500ms`, `1.5h`, `2us`): a sequence of decimal numbers each
//!   followed by a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`). The canonical form prints them the
//!   way Go's `time.Duration` does (`1m30s`, `1h0m0s`, `500ms`), which Compose reads back.
//! - Byte sizes follow Docker's `RAMInBytes`: a decimal number with an optional binary unit
//!   (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`, any case): `64m`, `1.5g`,
//!   `512MiB`, `1024`. The canonical form is the integer number of bytes.
//!
//! The `serde` helper modules ([`duration`], [`option_duration`]) let model types keep plain
//! [`std::time::Duration`] fields and still serialize to the Compose text form.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a Go-style duration such as `1m30s`; returns a message saying what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = || format!("expected a duration like \"1m30s\" or \"500ms\", found {text:?}");
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(expected());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(expected());
        }
        let value: f64 = number.parse().map_err(|_| expected())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(expected()),
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Formats a duration the way Go's `time.Duration::String` does: `1m30s`, `1h0m0s`, `500ms`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}us", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let mut out = String::new();
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds_nanos = nanos % 60_000_000_000;
    if hours > 0 {
        let _ = write!(out, "{hours}h{minutes}m");
    } else if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    out.push_str(&trim_fraction(seconds_nanos, 1_000_000_000));
    out.push('s');
    out
}

/// `value / unit` as a decimal with trailing zeros of the fraction removed.
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a byte size such as `64m`, `1.5g`, `512MiB` or `1024`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let expected = || format!("expected a byte size like \"64m\" or \"1.5g\", found {text:?}");
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number = &s[..num_len];
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(expected());
    }
    let value: f64 = number.parse().map_err(|_| expected())?;
    let mut unit = s[num_len..].trim_start().to_ascii_lowercase();
    if unit.ends_with('b') {
        unit.pop();
        if unit.ends_with('i') && unit.len() == 2 {
            unit.pop();
        }
    }
    let multiplier: f64 = match unit.as_str() {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "p" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(expected()),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("byte size {text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// Serde helpers for a [`Duration`] stored as its Compose text form.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as the Go-style text form.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Deserializes from the Go-style text form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for an optional [`Duration`] stored as its Compose text form.
pub mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some` as the Go-style text form and `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from the Go-style text form or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Serde helpers for optional permission bits, written as an octal string (`"0440"`) so that
/// the output reads back as Compose reads modes.
pub mod option_mode {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(0o440)` as `"0440"`.
    pub fn serialize<S: Serializer>(m: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.serialize_str(&format!("{m:04o}")),
            None => s.serialize_none(),
        }
    }

    /// Deserializes octal digits given as a string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let digits = match Option::<Raw>::deserialize(d)? {
            None => return Ok(None),
            Some(Raw::Number(n)) => n.to_string(),
            Some(Raw::Text(t)) => t.trim_start_matches("0o").to_string(),
        };
        u32::from_str_radix(&digits, 8).map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected octal permission bits, found {digits:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2us").unwrap(), Duration::from_micros(2));
        assert_eq!(parse_duration("2µs").unwrap(), Duration::from_micros(2));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
    }

    #[test]
    fn bad_durations_say_what_was_expected() {
        for bad in ["", "10", "1x", "s", "1..5s", "-1s", "1m 30s", "."] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.starts_with("expected a duration like"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for text in ["1m30s", "1h0m0s", "2.25s", "3ms", "4us", "5ns", "26h3m0.5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn byte_sizes_parse_like_docker() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("100b").unwrap(), 100);
        assert_eq!(parse_bytes("2 k").unwrap(), 2048);
        assert_eq!(parse_bytes("1t").unwrap(), 1 << 40);
    }

    #[test]
    fn bad_byte_sizes_say_what_was_expected() {
        for bad in ["", "m", "12x", "1.g", ".5g", "-1m", "1mbb", "1ki"] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(err.starts_with("expected a byte size"), "{bad}: {err}");
        }
        assert!(parse_bytes("99999999999p")
            .unwrap_err()
            .contains("too large"));
    }
}
