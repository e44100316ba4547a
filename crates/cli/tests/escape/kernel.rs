//! Kernel interfaces the seccomp filter closes: debugging other processes,
//! new namespaces, terminal injection, io_uring.

use super::{must_block, must_block_where_possible};
use crate::args;
use crate::support::{Case, Verdict};

pub fn ptrace_of_a_child_is_denied() -> Verdict {
    must_block(Case::new, |_| args!["ptrace-child"]);
    Verdict::Passed
}

pub fn process_vm_readv_of_a_child_is_denied() -> Verdict {
    must_block(Case::new, |_| args!["vm-read-child"]);
    Verdict::Passed
}

pub fn a_nested_user_namespace_is_denied() -> Verdict {
    must_block(Case::new, |_| args!["userns"]);
    Verdict::Passed
}

/// clone3 passes its flags in memory, where seccomp cannot look.
pub fn a_nested_user_namespace_via_clone3_is_denied() -> Verdict {
    must_block(Case::new, |_| args!["clone3-userns"]);
    Verdict::Passed
}

/// Without root, TIOCSTI fails bare when `dev.tty.legacy_tiocsti` is 0.
pub fn tiocsti_is_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["tiocsti"])
}

/// io_uring_setup fails bare when `kernel.io_uring_disabled` forbids it.
pub fn io_uring_is_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["io-uring"])
}

/// The filter compares the low 32 bits of an ioctl request, as the kernel does.
pub fn tiocsti_with_high_bits_is_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["tiocsti-high-bits"])
}

/// i386 system calls from a 64-bit process (`int 0x80`) must not slip past
/// a filter written for x86-64 numbers.
pub fn the_i386_syscall_abi_is_denied() -> Verdict {
    foreign_abi("i386-unshare")
}

/// x32 system call numbers share the x86-64 audit architecture.
pub fn the_x32_syscall_abi_is_denied() -> Verdict {
    foreign_abi("x32-unshare")
}

fn foreign_abi(attack: &str) -> Verdict {
    let baseline = Case::new().bare(&[attack]);
    Case::new().sandboxed(&[attack]).blocked_or_killed();
    match baseline.is_blocked() {
        true => Verdict::SandboxOnly(format!("not possible bare here either ({})", baseline.verdict())),
        false => {
            baseline.succeeded();
            Verdict::Passed
        }
    }
}
