//! sha256 digests of streams: readers that hash (and optionally copy) what passes through them,
//! and magic-number detection of layer compression.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// `sha256:HEX` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:HEX` digest, if it is one.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A reader that hashes every byte read through it and copies it to `sink`.
pub struct HashingReader<R, W = io::Sink> {
    inner: R,
    sink: W,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R, io::Sink> {
    /// Hashes without copying.
    pub fn new(inner: R) -> Self {
        Self::tee(inner, io::sink())
    }
}

impl<R: Read, W: Write> HashingReader<R, W> {
    /// Hashes and copies everything read to `sink`.
    pub fn tee(inner: R, sink: W) -> Self {
        HashingReader {
            inner,
            sink,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (a tar reader stops at the end-of-archive blocks).
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `sha256:HEX` digest of everything read, the byte count and the sink.
    pub fn finish(self) -> (String, u64, W) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (digest, self.count, self.sink)
    }
}

impl<R: Read, W: Write> Read for HashingReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.sink.write_all(&buf[..n])?;
        self.count += n as u64;
        Ok(n)
    }
}

/// How a layer tar is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// The OCI layer media type for a tar compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Reads the first bytes of `r` to tell its compression and returns a reader that yields the
/// whole stream again, peeked bytes included.
pub fn detect_compression<R: Read>(mut r: R) -> io::Result<(Compression, impl Read)> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let h = &head[..n];
    let kind = if h.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if h.starts_with(b"BZh") {
        Compression::Bzip2
    } else {
        Compression::None
    };
    Ok((kind, io::Cursor::new(head).take(n as u64).chain(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_reader_hashes_and_tees() {
        let mut copy = Vec::new();
        let mut r = HashingReader::tee(&b"hello"[..], &mut copy);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let (d, n, _) = r.finish();
        assert_eq!(n, 5);
        assert_eq!(d, sha256_digest(b"hello"));
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(copy, b"hello");
    }

    #[test]
    fn detects_magic_and_replays_the_head() {
        for (data, kind) in [
            (&[0x1f, 0x8b, 8, 0, 1, 2, 3][..], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 9][..], Compression::Zstd),
            (b"BZh91AY", Compression::Bzip2),
            (b"abc", Compression::None),
            (b"", Compression::None),
        ] {
            let (k, mut r) = detect_compression(data).unwrap();
            assert_eq!(k, kind);
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(all, data);
        }
        assert_eq!(sha256_hex(&sha256_digest(b"")).map(str::len), Some(64));
        assert_eq!(sha256_hex("sha256:xyz"), None);
    }
}
