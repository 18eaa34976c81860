//! The raw `bpf(2)` calls behind the cgroup v2 device filter: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup directory, and ask how many
//! device programs a cgroup has. The only `unsafe` of the cgroup module lives here.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `enum bpf_cmd` values from `linux/bpf.h`.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_QUERY: libc::c_int = 16;
/// `BPF_PROG_TYPE_CGROUP_DEVICE` from `enum bpf_prog_type`.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` from `enum bpf_attach_type`.
const BPF_CGROUP_DEVICE: u32 = 6;
/// Attach flag: programs in descendant cgroups run in addition to this one (all must allow).
pub(crate) const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// Size of the verifier log buffer used when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// One eBPF instruction (`struct bpf_insn`): opcode, `dst | src << 4`, offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BpfInsn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// The leading part of the `BPF_PROG_LOAD` member of `union bpf_attr`, up to
/// `expected_attach_type`; the kernel treats the missing tail as zero.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` member of `union bpf_attr` (6.6+ layout).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// An attr followed by zeroed room: some commands write output fields (the query revision)
/// at fixed offsets whatever size was passed, so the kernel must only ever touch our memory.
#[repr(C)]
struct Padded<T> {
    attr: T,
    tail: [u64; 32],
}

/// Calls `bpf(cmd, attr, size)` on a zero-padded copy of `attr` and copies the result back.
///
/// # Safety
/// `attr` must be the `union bpf_attr` member that `cmd` expects, and every pointer stored in
/// it must be valid for the access the kernel makes for `cmd` for the duration of the call.
unsafe fn bpf<T: Copy>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    let mut buf = Padded {
        attr: *attr,
        tail: [0; 32],
    };
    // SAFETY: the caller guarantees `attr` matches `cmd` and its pointers are valid; the
    // kernel reads and writes at most `size_of::<Padded<T>>()` bytes of `buf`, which we own,
    // and checks that the zeroed tail beyond the attr it knows is zero.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            &mut buf as *mut Padded<T> as *mut libc::c_void,
            std::mem::size_of::<Padded<T>>() as libc::c_uint,
        )
    };
    let result = if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    };
    *attr = buf.attr;
    result
}

/// Loads `insns` as a cgroup device program. On failure returns the error and, when the
/// verifier rejected the program, its log.
pub(crate) fn load_device_prog(
    insns: &[BpfInsn],
    license: &CStr,
) -> Result<OwnedFd, (io::Error, String)> {
    let mut log = vec![0u8; LOG_SIZE];
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"berth_dev_f");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is the PROG_LOAD member; `insns` and `license` outlive the call and
    // `insn_cnt` is the length of `insns`; no log buffer is given.
    let first = unsafe { bpf(BPF_PROG_LOAD, &mut attr) };
    let err = match first {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    // Load again with the verifier log on, to say why the program was refused.
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above, plus `log_buf` points to `log_size` writable bytes owned by `log`.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => Ok(owned(fd)),
        Err(_) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err((err, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
    }
}

/// Wraps a file descriptor number the kernel just returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` is a new descriptor returned by a successful bpf() call; nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// Attaches the device program `prog` to the cgroup directory `cgroup`.
pub(crate) fn attach_device_prog(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is the PROG_ATTACH member and holds no pointers; both fds are borrowed
    // and stay open for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(|_| ())
}

/// Number of device programs attached directly to the cgroup directory `cgroup`.
pub(crate) fn count_device_progs(cgroup: BorrowedFd<'_>) -> io::Result<u32> {
    let mut attr = ProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is the PROG_QUERY member; `prog_ids` and `prog_attach_flags` are null
    // with `prog_cnt` zero, so the kernel only writes the count back into `attr`.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    Ok(attr.prog_cnt)
}
