//! Extended-attribute syscalls for the image store: the only `unsafe` in the image module.
//!
//! nix has no xattr wrappers. Attributes of entries that must not be opened (symlinks, device
//! nodes, fifos) are set through `/proc/self/fd/DIRFD/NAME` with `lsetxattr`: the kernel resolves
//! the directory through our own descriptor and never follows `NAME` itself.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in name"))
}

fn check(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// Sets attribute `key` of entry `name` in directory `dir` without following `name`.
pub fn set_xattr_at(dir: BorrowedFd<'_>, name: &OsStr, key: &str, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = cstring(&path)?;
    let key = cstring(key.as_bytes())?;
    // SAFETY: both strings are valid NUL-terminated C strings that outlive the call, and
    // `value` is a live slice whose pointer and length are passed together.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(ret as libc::ssize_t).map(drop)
}

/// Sets attribute `key` on the directory `dir` itself.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let key = cstring(key.as_bytes())?;
    // SAFETY: `fd` is a live descriptor, `key` a valid C string and `value` a live slice
    // whose pointer and length are passed together.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(ret as libc::ssize_t).map(drop)
}

/// Reads attribute `key` of `path` without following a final symlink; `None` when absent.
pub fn get_xattr(path: &Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    let p = cstring(path.as_os_str().as_bytes())?;
    let k = cstring(key.as_bytes())?;
    loop {
        // SAFETY: a null buffer with size 0 asks only for the value's length.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), std::ptr::null_mut(), 0) };
        let len = match check(len) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is a live, writable buffer of exactly `buf.len()` bytes.
        let got =
            unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(got) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // The value grew between the two calls: ask again.
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}
