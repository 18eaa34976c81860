//! Parsing of human units on the command line: byte sizes (`64m`, `1.5g`) and `K=V` pairs.

use anyhow::{bail, Context};

/// Parses a byte size the way Docker does: a number with an optional b, k, m, g, t suffix
/// (powers of 1024), case-insensitive.
pub fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && r.chars().last().is_some_and(|c| c.is_alphabetic()))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| {
        format!("invalid size {s:?}: expected a number with an optional k, m, g suffix, e.g. 64m")
    })?;
    if n < 0.0 {
        bail!("invalid size {s:?}: must not be negative");
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("10kb").unwrap(), 10 << 10);
        assert!(parse_bytes("lots").is_err());
    }
}
