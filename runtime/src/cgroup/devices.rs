//! The device allowlist: which device nodes a container may create (`mknod`) and open.
//!
//! Without it a container holding `CAP_MKNOD` could create a node for the host's disk and
//! read it. The list is Docker's default: every node may be created, and only the harmless
//! character devices (null, zero, full, random, urandom, tty, console, ptmx, pts) may be
//! read or written.
//!
//! - v1: `devices.deny` gets `a`, then each rule goes to `devices.allow`. A failed write fails
//!   the create (a half-written list would deny even `/dev/null`).
//! - v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, assembled here by hand, is attached to the
//!   container's cgroup with `BPF_F_ALLOW_MULTI` (programs of descendants run in addition, so
//!   a nested cgroup can narrow the list but never widen it). The kernel keeps the program
//!   attached until the cgroup is removed, so nothing needs to stay open. If the kernel refuses
//!   the program (no `CONFIG_CGROUP_BPF`, no `CAP_BPF`), the create goes on without a filter
//!   and reports it, so the caller drops `CAP_MKNOD`.

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use super::sys::{self, BpfInsn};
use super::CgroupError;

/// Access bits, as in `BPF_DEVCG_ACC_*`.
const MKNOD: u32 = 1;
const READ: u32 = 2;
const WRITE: u32 = 4;
const RWM: u32 = MKNOD | READ | WRITE;
/// Device kinds, as in `BPF_DEVCG_DEV_*`.
const BLOCK: u32 = 1;
const CHAR: u32 = 2;

/// One allowlist entry; `None` for major or minor is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub kind: u32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

const fn rule(kind: u32, major: Option<u32>, minor: Option<u32>, access: u32) -> DeviceRule {
    DeviceRule {
        kind,
        major,
        minor,
        access,
    }
}

/// Docker's default device allowlist.
pub(crate) const DEFAULT_RULES: [DeviceRule; 11] = [
    rule(CHAR, None, None, MKNOD),
    rule(BLOCK, None, None, MKNOD),
    rule(CHAR, Some(1), Some(3), RWM), // /dev/null
    rule(CHAR, Some(1), Some(5), RWM), // /dev/zero
    rule(CHAR, Some(1), Some(7), RWM), // /dev/full
    rule(CHAR, Some(1), Some(8), RWM), // /dev/random
    rule(CHAR, Some(1), Some(9), RWM), // /dev/urandom
    rule(CHAR, Some(5), Some(0), RWM), // /dev/tty
    rule(CHAR, Some(5), Some(1), RWM), // /dev/console
    rule(CHAR, Some(5), Some(2), RWM), // /dev/ptmx
    rule(CHAR, Some(136), None, RWM),  // /dev/pts/*
];

impl DeviceRule {
    /// The rule in the v1 `devices.allow` syntax, e.g. `c 136:* rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        let kind = if self.kind == BLOCK { 'b' } else { 'c' };
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// Writes the allowlist into a v1 devices cgroup: deny everything, then allow each rule.
/// Each rule is its own `write(2)` on one open file, as the kernel parses one rule per write.
pub(crate) fn apply_v1(dir: &Path) -> Result<(), CgroupError> {
    super::files::write(&dir.join("devices.deny"), "a")?;
    let path = dir.join("devices.allow");
    let mut file = File::options()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|source| CgroupError::Write {
            path: path.clone(),
            value: String::new(),
            source,
        })?;
    for r in DEFAULT_RULES {
        let line = r.v1_line();
        file.write_all(line.as_bytes())
            .map_err(|source| CgroupError::Write {
                path: path.clone(),
                value: line.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Loads the allowlist program and attaches it to the cgroup2 directory `dir`.
pub(crate) fn attach_bpf(dir: &Path) -> Result<(), CgroupError> {
    let bpf_err = |step: &'static str, source: std::io::Error, log: String| CgroupError::Bpf {
        step,
        path: dir.to_path_buf(),
        source,
        log,
    };
    let insns = program(&DEFAULT_RULES);
    let license: &CStr = c"Apache-2.0";
    let prog = sys::load_device_prog(&insns, license)
        .map_err(|(e, log)| bpf_err("load program", e, log))?;
    let cgroup = File::open(dir).map_err(|e| bpf_err("open cgroup directory", e, String::new()))?;
    sys::attach_device_prog(cgroup.as_fd(), prog.as_fd(), sys::BPF_F_ALLOW_MULTI)
        .map_err(|e| bpf_err("attach program", e, String::new()))
}

/// Whether a device program is attached to the cgroup2 directory `dir`.
pub(crate) fn bpf_attached(dir: &Path) -> bool {
    File::open(dir)
        .and_then(|f| sys::count_device_progs(f.as_fd()))
        .is_ok_and(|n| n > 0)
}

// eBPF opcodes used by the program.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm (32 bit)
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm (32 bit)
const ALU32_MOV_X: u8 = 0xbc; // dst = src (32 bit)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto pc + off
const JMP_JNE_X: u8 = 0x5d; // if dst != src goto pc + off
const JMP_EXIT: u8 = 0x95; // return r0

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Assembles the filter. The context (`struct bpf_cgroup_dev_ctx`, in r1) holds
/// `access_type = access << 16 | kind`, `major`, `minor`. Loaded once into r2 = kind,
/// r3 = access, r4 = major, r5 = minor; then one block per rule that returns 1 (allow) when
/// the request matches, and a final `return 0` (deny).
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules {
        // Checks that jump past the block when they fail, written with a placeholder offset.
        let mut block: Vec<BpfInsn> = vec![insn(JMP_JNE_K, 2, 0, 0, r.kind as i32)];
        if r.access != RWM {
            // Every requested access bit must be allowed: (access & allowed) == access.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, r.access as i32));
            block.push(insn(JMP_JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = r.major {
            block.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = r.minor {
            block.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                // Jump to the first instruction after the block.
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on a device request, interpreting just the opcodes `program` emits.
    fn run(prog: &[BpfInsn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JMP_JNE_K | JMP_JNE_X => {}
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn program_implements_the_allowlist() {
        let p = program(&DEFAULT_RULES);
        let allow = |kind, access, major, minor| run(&p, kind, access, major, minor) == 1;
        // Harmless character devices: any access.
        for (maj, min) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            assert!(allow(CHAR, READ | WRITE, maj, min), "c {maj}:{min}");
            assert!(allow(CHAR, MKNOD, maj, min));
        }
        assert!(allow(CHAR, READ, 136, 0));
        assert!(allow(CHAR, WRITE, 136, 4711));
        // Any node may be created, but not opened.
        assert!(allow(BLOCK, MKNOD, 8, 0));
        assert!(allow(CHAR, MKNOD, 1, 1));
        assert!(!allow(BLOCK, READ, 8, 0));
        assert!(!allow(BLOCK, WRITE, 8, 0));
        assert!(!allow(BLOCK, READ | MKNOD, 8, 0));
        assert!(!allow(CHAR, READ, 1, 1)); // /dev/mem
        assert!(!allow(CHAR, WRITE, 10, 200)); // /dev/net/tun
        assert!(!allow(CHAR, READ, 4, 0)); // /dev/tty0
        assert!(!allow(CHAR, READ, 1, 4)); // /dev/port
        assert!(!allow(BLOCK, READ, 1, 3)); // block 1:3 is not char 1:3
    }

    #[test]
    fn program_shape() {
        let p = program(&DEFAULT_RULES);
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        assert!(p.len() < 4096);
        let empty = program(&[]);
        assert_eq!(run(&empty, CHAR, READ, 1, 3), 0);
    }

    #[test]
    fn kernel_accepts_the_program_and_explains_a_refusal() {
        // Loading needs root; the program is dropped again without being attached.
        let good = sys::load_device_prog(&program(&DEFAULT_RULES), c"Apache-2.0");
        assert!(good.is_ok(), "{:?}", good.err());
        // No exit instruction: the verifier refuses and says why.
        let bad = [insn(ALU64_MOV_K, 0, 0, 0, 1)];
        let (err, log) = sys::load_device_prog(&bad, c"Apache-2.0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(!log.is_empty());
    }

    #[test]
    fn attaching_to_a_plain_directory_fails_with_context() {
        let dir = tempfile::tempdir().unwrap();
        let err = attach_bpf(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("device filter for "), "{msg}");
        assert!(msg.contains("attach program"), "{msg}");
        assert!(!bpf_attached(dir.path()));
    }

    #[test]
    fn v1_lines() {
        let lines: Vec<String> = DEFAULT_RULES.iter().map(DeviceRule::v1_line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[1], "b *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert_eq!(lines[10], "c 136:* rwm");
    }

    #[test]
    fn v1_rules_written_one_per_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("devices.deny"), "").unwrap();
        std::fs::write(dir.path().join("devices.allow"), "").unwrap();
        apply_v1(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("devices.deny")).unwrap(),
            "a"
        );
        let allow = std::fs::read_to_string(dir.path().join("devices.allow")).unwrap();
        assert!(allow.starts_with("c *:* mb *:* mc 1:3 rwm"));
        assert!(allow.ends_with("c 136:* rwm"));
    }
}
