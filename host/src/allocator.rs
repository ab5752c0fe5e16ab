//! The global allocator of the `otter` binary and the benchmarks: mimalloc, asked for plain
//! blocks whenever its blocks' own alignment is enough.
//!
//! The `mimalloc` crate passes every request to `mi_malloc_aligned`, which serves a request
//! over 1 KiB whose size is not a power of two by allocating `size + align - 1` bytes: a
//! process's store record (1,280 bytes) took a 1,536-byte block. mimalloc's blocks of 16
//! bytes or more are 16-byte aligned, so those requests go to `mi_malloc` instead.
//!
//! That guarantee holds for the library as built here (release, no guarded mode): a debug
//! build of mimalloc run with `MIMALLOC_GUARDED_PRECISE=1` places blocks unaligned, and must
//! not be combined with this allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as ffi;

/// The alignment mimalloc gives every block of at least this many bytes.
const BLOCK_ALIGN: usize = 16;

/// mimalloc, without the aligned path's padding for what needs no more than its blocks'
/// alignment.
pub struct Allocator;

fn plain(size: usize, align: usize) -> bool {
    align <= BLOCK_ALIGN && size >= BLOCK_ALIGN
}

// SAFETY: every block comes from mimalloc and goes back to it; a plain block is used only
// when mimalloc's guaranteed alignment covers the layout's.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions take any size.
        unsafe {
            if plain(layout.size(), layout.align()) {
                ffi::mi_malloc(layout.size()).cast()
            } else {
                ffi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                ffi::mi_zalloc(layout.size()).cast()
            } else {
                ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; mimalloc keeps or moves the block.
        unsafe {
            if plain(new_size, layout.align()) {
                ffi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::Allocator;

    // In mimalloc, declared by `libmimalloc-sys` only with its `extended` feature.
    unsafe extern "C" {
        fn mi_usable_size(p: *const std::ffi::c_void) -> usize;
    }

    /// What a block of `layout` from `alloc` holds, in bytes.
    fn usable(alloc: &impl GlobalAlloc, layout: Layout) -> usize {
        // SAFETY: the block is freed with the allocator that made it, with its layout.
        unsafe {
            let p = alloc.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % layout.align(), 0, "{layout:?} misaligned");
            let usable = mi_usable_size(p.cast());
            alloc.dealloc(p, layout);
            usable
        }
    }

    #[test]
    fn a_block_over_1_kib_is_not_padded_for_an_alignment_mimalloc_gives_anyway() {
        let store = Layout::from_size_align(1280, 8).expect("layout");
        assert_eq!(usable(&Allocator, store), 1280);
    }

    #[test]
    fn every_block_has_its_layouts_alignment() {
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 7, 8, 15, 16, 24, 1000, 1025, 1280, 3000, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                assert!(usable(&Allocator, layout) >= size);
            }
        }
    }
}
