//! Which pages of a released slot may still hold its last holder's bytes, read from
//! `/proc/self/pagemap`.
//!
//! A warm memory slot is zeroed in place, page by page, before its next holder gets it, and a
//! memory that moves out of a small slot copies only the pages it wrote. Both need every page
//! that holds bytes: a page in RAM, and a page the kernel has swapped out, which reads back
//! with its old bytes. `mincore` reports the first kind only, so with it a memory swapped out
//! in part would reach the next process with the swapped pages unzeroed (and a moving memory
//! would lose them). The pagemap reports both, one 64-bit entry per page, and an entry that is
//! neither is a page never written, or given back, which reads as zeros. On the 2-core VM of
//! `BENCHMARKS.md` reading it for 32 pages took 0.77 µs, against `mincore`'s 0.94 µs.
//!
//! What a page that is not in RAM holds cannot be rewritten without reading it back first, so
//! a range with such a page is reported as unknown, and the caller treats every page as
//! written: it gives the slot back to the kernel (which drops swapped pages too) or copies the
//! whole range. So are a pagemap that cannot be read (no procfs, a sandbox that hides it) and
//! a forked child, whose inherited descriptor still reads its parent's pages. A guard page
//! (`MADV_GUARD_INSTALL`, in the stack pool) holds no bytes and must not be written: the
//! kernel marks it in the pagemap since Linux 6.15; before, it reads as a page not in RAM.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// The entry's page is in RAM.
const PRESENT: u64 = 1 << 63;

/// The entry's page is not in RAM but not empty either: swapped out, being migrated, or
/// marked (a guard page, among others).
const AWAY: u64 = 1 << 62;

/// The entry's page is a guard page (since Linux 6.15; with [`AWAY`]).
const GUARD: u64 = 1 << 58;

/// Entries read per `pread`: 4 KiB of them, 2 MiB of pages.
const WINDOW: usize = 512;

/// What a pagemap entry says of its page's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// In RAM: it may hold bytes.
    Written,
    /// Never written, given back, or a guard page: no bytes (reads as zeros, or faults).
    Empty,
    /// Not in RAM, and not empty: its bytes are elsewhere (swapped out, being migrated), or
    /// it is marked in a way this does not know.
    Away,
}

impl Page {
    fn of(entry: u64) -> Page {
        if entry & PRESENT != 0 {
            Page::Written
        } else if entry & AWAY != 0 && entry & GUARD == 0 {
            Page::Away
        } else {
            Page::Empty
        }
    }
}

/// Which of the `len` bytes at `base` may hold bytes written to them, a page per entry of
/// `written` (true: in RAM); `false` if that is unknown (a page is swapped out or otherwise
/// away, or the pagemap cannot be read), in which case any page may.
///
/// Only the page tables are read: pages that are not in RAM stay where they are.
pub(super) fn written_pages(
    base: *mut u8,
    len: usize,
    page: usize,
    written: &mut Vec<bool>,
) -> bool {
    written.clear();
    let Some(pagemap) = own_pagemap() else {
        return false;
    };
    let first = base.addr() / page;
    let pages = len / page;
    let mut bytes = [0u8; WINDOW * 8];
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(WINDOW);
        let offset = ((first + done) * 8) as u64;
        if pagemap.read_exact_at(&mut bytes[..n * 8], offset).is_err() {
            written.clear();
            return false;
        }
        for raw in bytes[..n * 8].chunks_exact(8) {
            match Page::of(u64::from_ne_bytes(raw.try_into().expect("8 bytes"))) {
                Page::Written => written.push(true),
                Page::Empty => written.push(false),
                Page::Away => {
                    written.clear();
                    return false;
                }
            }
        }
        done += n;
    }
    true
}

/// This process's pagemap, opened once; `None` in a forked child (the descriptor reads the
/// parent's) or where it cannot be opened.
fn own_pagemap() -> Option<&'static File> {
    static PAGEMAP: OnceLock<Option<(u32, File)>> = OnceLock::new();
    super::own_handle(&PAGEMAP, || {
        File::open("/proc/self/pagemap")
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot read /proc/self/pagemap: released memories are given back to the kernel, not reused warm");
            })
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use rustix::mm::{MapFlags, ProtFlags};

    use super::{AWAY, GUARD, PRESENT, Page, written_pages};
    use crate::pools::tests::kernel_at_least;

    /// Linux's `MADV_GUARD_INSTALL` (6.13).
    const MADV_GUARD_INSTALL: libc::c_int = 102;

    /// A fresh private anonymous mapping of `pages` pages, never freed (the tests are short).
    fn mapping(pages: usize) -> *mut u8 {
        let page = rustix::param::page_size();
        // SAFETY: a new anonymous mapping, this test's alone.
        unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                pages * page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .expect("mmap")
        .cast()
    }

    #[test]
    fn an_entry_away_from_ram_and_not_a_guard_makes_the_pages_unknown() {
        assert_eq!(Page::of(PRESENT), Page::Written);
        // Soft-dirty, exclusively mapped: still a page in RAM.
        assert_eq!(
            Page::of(PRESENT | 1 << 55 | 1 << 56 | 0x1234),
            Page::Written
        );
        assert_eq!(Page::of(0), Page::Empty);
        // A swap entry: its type and offset in the low bits.
        assert_eq!(Page::of(AWAY | 0x9f), Page::Away);
        assert_eq!(
            Page::of(AWAY | GUARD),
            Page::Empty,
            "a guard page holds no bytes"
        );
    }

    #[test]
    fn the_written_pages_are_those_in_ram() {
        let page = rustix::param::page_size();
        let base = mapping(8);
        for p in [1, 2, 5] {
            // SAFETY: page `p` of the mapping.
            unsafe { base.add(p * page).write(7) };
        }
        // Page 5 goes back to the kernel: empty again.
        // SAFETY: a page of this test's mapping, which nothing else uses.
        unsafe {
            rustix::mm::madvise(
                base.add(5 * page).cast(),
                page,
                rustix::mm::Advice::LinuxDontNeed,
            )
        }
        .expect("madvise");
        let mut written = Vec::new();
        assert!(written_pages(base, 8 * page, page, &mut written));
        assert_eq!(
            written,
            [false, true, true, false, false, false, false, false]
        );
        // A range that starts inside the mapping is read from its own first page.
        assert!(written_pages(
            base.wrapping_add(2 * page),
            2 * page,
            page,
            &mut written
        ));
        assert_eq!(written, [true, false]);
    }

    #[test]
    fn a_guard_page_is_not_written_where_the_kernel_says_what_it_is() {
        let page = rustix::param::page_size();
        let base = mapping(3);
        // SAFETY: the first page of the mapping.
        unsafe { base.write(1) };
        // SAFETY: the second page of this test's mapping, which nothing uses.
        if unsafe { libc::madvise(base.add(page).cast(), page, MADV_GUARD_INSTALL) } != 0 {
            eprintln!("this kernel has no MADV_GUARD_INSTALL; nothing to check");
            return;
        }
        let mut written = Vec::new();
        if written_pages(base, 3 * page, page, &mut written) {
            assert_eq!(written, [true, false, false]);
        } else {
            // Before Linux 6.15 the pagemap shows a guard page as one swapped out.
            assert!(
                !kernel_at_least(6, 15),
                "Linux 6.15 marks guard pages in the pagemap"
            );
        }
    }
}
