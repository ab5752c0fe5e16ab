//! Giving released slots' pages back to the kernel, a batch at a time.
//!
//! `MADV_DONTNEED` must flush the TLB of every CPU the process runs on before it returns:
//! with a second worker running, one call took 10.2 µs on the 2-core VM of `BENCHMARKS.md`
//! (an interrupt to the other CPU, through the hypervisor), against 1.5 µs with one thread.
//! A process that exits or hibernates once the warm slots are full pays that twice (its
//! memory and its stack). One `process_madvise` call on the process itself (Linux 6.13)
//! takes many ranges, and a kernel that batches the flush over them (6.18 here) does one for
//! all: sixteen ranges took 1.8 µs each. So slots released small wait in a batch of
//! [`BATCH`], handed to no one, and go back together; a slot larger than the warm ones goes
//! at once, as its pages, not the flush, are most of its cost. On a kernel that refuses the
//! call each range is given back alone, as before.
//!
//! Until its batch goes, a slot keeps the pages its holder touched: at most `BATCH - 1`
//! slots of up to `WARM_BYTES` each per pool.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use rustix::mm::{self, Advice};

/// Slots given back to the kernel in one call.
pub(super) const BATCH: usize = 16;

/// Give each range's pages back to the kernel, so that they read as zeros: in one
/// `process_madvise` call where the kernel takes one, one `madvise` per range otherwise.
/// Returns, per range, whether that failed (the range may still hold its bytes).
///
/// # Safety
///
/// Each range is page aligned and lies inside a mapping of the caller's, which nobody uses.
pub(super) unsafe fn dont_need(ranges: &[(*mut u8, usize)]) -> Vec<Option<io::Error>> {
    // SAFETY: the caller's contract.
    let done = unsafe { dont_need_batched(ranges) };
    let mut left = done;
    ranges
        .iter()
        .map(|&(base, len)| {
            if left >= len {
                left -= len;
                return None;
            }
            // Not reached by the batch (or only partly): alone, from its start.
            left = 0;
            // SAFETY: the caller's contract.
            unsafe { dont_need_one(base, len) }.err()
        })
        .collect()
}

/// `MADV_DONTNEED` on one range.
///
/// # Safety
///
/// As for [`dont_need`].
unsafe fn dont_need_one(base: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller's contract.
    unsafe { mm::madvise(base.cast(), len, Advice::LinuxDontNeed) }.map_err(io::Error::from)
}

/// `process_madvise(MADV_DONTNEED)` of the ranges, in order, on this process: how many bytes
/// from the first range on were given back (0 if the kernel refused the call).
///
/// # Safety
///
/// As for [`dont_need`].
unsafe fn dont_need_batched(ranges: &[(*mut u8, usize)]) -> usize {
    if ranges.len() < 2 {
        return 0;
    }
    let Some(pidfd) = own_pidfd() else {
        return 0;
    };
    let iov: Vec<libc::iovec> = ranges
        .iter()
        .map(|&(base, len)| libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        })
        .collect();
    // SAFETY: `iov` holds `iov.len()` entries, each a range of this process's the caller
    // vouches for; the kernel only reads `iov`.
    let done = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd,
            iov.as_ptr(),
            iov.len(),
            libc::MADV_DONTNEED,
            0,
        )
    };
    // Refused outright (-1): before 6.13 (EINVAL), before 5.10 (ENOSYS), barred by a seccomp
    // policy, or the first range was. Asked again next time all the same: a refusal costs
    // one system call per batch, against one per range.
    usize::try_from(done).unwrap_or(0)
}

/// A pidfd of this process, opened once; `None` in a forked child (the pidfd names the
/// parent) or where the kernel has none.
fn own_pidfd() -> Option<i32> {
    static PIDFD: OnceLock<Option<(u32, OwnedFd)>> = OnceLock::new();
    super::own_handle(&PIDFD, || {
        // SAFETY: `pidfd_open` takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: `fd` was just opened, and is owned by nothing else.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .map(AsRawFd::as_raw_fd)
}

#[cfg(test)]
mod tests {
    use rustix::mm::{MapFlags, ProtFlags};

    use super::{dont_need, dont_need_one};

    /// `n` ranges of `pages` written pages each, a page apart, in a fresh mapping.
    fn written_ranges(n: usize, pages: usize) -> (Vec<(*mut u8, usize)>, usize) {
        let page = rustix::param::page_size();
        let len = n * (pages + 1) * page;
        // SAFETY: a new anonymous mapping, this test's alone.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .expect("mmap")
        .cast::<u8>();
        let ranges = (0..n)
            .map(|i| {
                // SAFETY: inside the mapping.
                let start = unsafe { base.add(i * (pages + 1) * page) };
                // SAFETY: the range's pages, inside the mapping.
                unsafe { start.write_bytes(0xA5, pages * page) };
                (start, pages * page)
            })
            .collect();
        (ranges, len)
    }

    fn resident_pages(base: *mut u8, len: usize) -> usize {
        let page = rustix::param::page_size();
        let mut vec = vec![0u8; len / page];
        // SAFETY: a range of this test's mapping; `vec` has a byte per page.
        assert_eq!(
            unsafe { libc::mincore(base.cast(), len, vec.as_mut_ptr()) },
            0
        );
        vec.iter().filter(|b| **b & 1 == 1).count()
    }

    fn given_back(ranges: &[(*mut u8, usize)]) -> bool {
        ranges.iter().all(|&(base, len)| {
            // SAFETY: a range of this test's mapping.
            let bytes = unsafe { std::slice::from_raw_parts(base, len) };
            resident_pages(base, len) == 0 && bytes.iter().all(|b| *b == 0)
        })
    }

    #[test]
    fn every_range_of_a_batch_reads_as_zeros_and_holds_no_page() {
        let (ranges, len) = written_ranges(super::BATCH, 3);
        // SAFETY: this test's ranges, unused meanwhile.
        let failed = unsafe { dont_need(&ranges) };
        assert!(failed.iter().all(Option::is_none), "{failed:?}");
        assert!(given_back(&ranges));
        // SAFETY: the whole mapping, this test's.
        unsafe { rustix::mm::munmap(ranges[0].0.cast(), len) }.expect("munmap");
    }

    #[test]
    fn a_batch_goes_back_in_one_call_where_the_kernel_takes_one() {
        if !crate::pools::tests::kernel_at_least(6, 13) {
            return;
        }
        let (ranges, len) = written_ranges(4, 2);
        let total: usize = ranges.iter().map(|r| r.1).sum();
        // SAFETY: this test's ranges, unused meanwhile.
        assert_eq!(unsafe { super::dont_need_batched(&ranges) }, total);
        assert!(given_back(&ranges));
        // SAFETY: the whole mapping, this test's.
        unsafe { rustix::mm::munmap(ranges[0].0.cast(), len) }.expect("munmap");
    }

    #[test]
    fn a_range_given_back_alone_reads_as_zeros_and_holds_no_page() {
        let (ranges, len) = written_ranges(2, 2);
        for &(base, len) in &ranges {
            // SAFETY: this test's range, unused meanwhile.
            unsafe { dont_need_one(base, len) }.expect("madvise");
        }
        assert!(given_back(&ranges));
        // SAFETY: the whole mapping, this test's.
        unsafe { rustix::mm::munmap(ranges[0].0.cast(), len) }.expect("munmap");
    }

    #[test]
    fn a_range_the_kernel_refuses_is_reported_and_the_others_still_go_back() {
        let (mut ranges, len) = written_ranges(3, 1);
        // Not page aligned: refused, whichever way it is asked.
        let page = rustix::param::page_size();
        // SAFETY: inside the mapping.
        ranges[1] = (unsafe { ranges[1].0.add(1) }, page);
        // SAFETY: this test's ranges, unused meanwhile (the misaligned one is refused).
        let failed = unsafe { dont_need(&ranges) };
        assert!(failed[0].is_none() && failed[2].is_none(), "{failed:?}");
        assert!(failed[1].is_some(), "a misaligned range was not reported");
        assert!(given_back(&[ranges[0], ranges[2]]));
        // SAFETY: the whole mapping, this test's.
        unsafe { rustix::mm::munmap(ranges[0].0.cast(), len) }.expect("munmap");
    }
}
