//! The guest's heap: `dlmalloc` (the allocator the standard library uses on this target),
//! behind Otter's own break, fed from the linear memory the module already has before it
//! grows it.
//!
//! The standard library's allocator for `wasm32-unknown-unknown` (measured with Rust 1.95)
//! ignores the free tail of the initial memory (from `__heap_base`, the end of the data, to
//! `__heap_end`, the end of the last 64 KiB wasm page) and takes its first 64 KiB with
//! `memory.grow`, writing at both ends of it. An idle process then keeps two pages of its own
//! resident for a few bytes of heap: on Otter, where every live process is a linear memory, a
//! third of an idle counter's memory.
//!
//! Here the break starts at `__heap_base` and advances a 4 KiB page at a time (the host's
//! pages, not wasm's 64 KiB ones), growing the memory by whole wasm pages only when the break
//! passes its end. A small heap then lies on the page where the data ends. The default
//! feature `allocator` installs it; a guest with its own `#[global_allocator]` turns the
//! feature off (`default-features = false`).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::{Cell, UnsafeCell};
use core::ptr;

use dlmalloc::Dlmalloc;

use crate::small_blocks::SmallBlocks;

/// The host's page: the break ends on one, so the allocator's bookkeeping at the top of its
/// region lands on a page the heap already uses.
const PAGE: usize = 4096;

/// The alignment `dlmalloc` gives every block: two words.
const MALLOC_ALIGN: usize = 2 * size_of::<usize>();

/// A wasm page, the unit of `memory.grow`.
const WASM_PAGE: usize = 65536;

unsafe extern "C" {
    /// Where the linker placed the heap: the first byte after the data and the stack.
    static __heap_base: u8;
    /// The end of the initial memory: the heap's free tail ends here, whatever the memory
    /// has grown to before the first allocation.
    static __heap_end: u8;
}

/// The allocator of every guest built with the `allocator` feature: freed small blocks kept
/// for reuse ([`SmallBlocks`]), in front of `dlmalloc`.
#[global_allocator]
static HEAP: Heap = Heap(SmallBlocks::new(Dl(UnsafeCell::new(new_dlmalloc()))));

const fn new_dlmalloc() -> Dlmalloc<Break> {
    let mut heap = Dlmalloc::new_with_allocator(Break {
        next: Cell::new(0),
        end_pages: Cell::new(0),
    });
    // Ask the break for small steps: it rounds each up to a whole page itself.
    let accepted = heap.set_granularity(64);
    assert!(accepted, "64 is a valid dlmalloc granularity");
    heap
}

/// The guest's allocator.
struct Heap(SmallBlocks<Dl>);

// SAFETY: this target has no threads (no `atomics` feature: the module is built for one
// thread), so no two calls ever reach the allocator at once.
unsafe impl Sync for Heap {}

// SAFETY: every method forwards to `SmallBlocks`, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// `dlmalloc` behind the [`GlobalAlloc`] interface.
struct Dl(UnsafeCell<Dlmalloc<Break>>);

// SAFETY: every method forwards to `dlmalloc`, which upholds `GlobalAlloc`'s contract for the
// layouts it is given; nothing here allocates, so no call re-enters another. Single-threaded
// (see `Heap`'s `Sync`).
unsafe impl GlobalAlloc for Dl {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (see `Heap`'s `Sync`), and not re-entered.
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    // `c_free` and `c_realloc` rather than `free` and `realloc`, which first check the size
    // given against the chunk's with `assert!`s: a check of `GlobalAlloc`'s own contract,
    // whose texts and source path would be bytes of every guest's data.
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: as in `alloc`; `ptr` is an allocation of this allocator, not yet freed (the
        // caller's contract).
        unsafe { (*self.0.get()).c_free(ptr) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let heap = self.0.get();
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: as in `dealloc`; the result has the natural alignment, all `layout` asks.
            return unsafe { (*heap).c_realloc(ptr, new_size) };
        }
        // SAFETY: as in `dealloc`; both blocks hold the bytes copied, and differ.
        unsafe {
            let moved = (*heap).malloc(new_size, layout.align());
            if !moved.is_null() {
                ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                (*heap).c_free(ptr);
            }
            moved
        }
    }
}

/// The heap's break: regions handed to `dlmalloc`, each starting where the last ended while
/// the memory is the heap's to take.
struct Break {
    /// The next free byte; 0 before the first region.
    next: Cell<usize>,
    /// The memory's size in wasm pages when the break last took memory: past it, the break
    /// grows the memory, unless something else grew it meanwhile.
    end_pages: Cell<usize>,
}

/// The end, in bytes, of a memory of `pages` wasm pages. A full 4 GiB memory's end does not
/// fit in a `usize` here: its last 4 KiB page is left out.
fn bytes(pages: usize) -> usize {
    pages
        .checked_mul(WASM_PAGE)
        .unwrap_or(usize::MAX & !(PAGE - 1))
}

/// Grow the memory by `pages` wasm pages: its old size, or `None` if it cannot grow.
fn grow(pages: usize) -> Option<usize> {
    let old = wasm32::memory_grow(0, pages);
    (old != usize::MAX).then_some(old)
}

// SAFETY: `alloc` hands out regions of memory nothing else uses: the initial memory's free
// tail (the linker leaves it to the heap) and pages this allocator itself grew, each region
// once; memory that is never freed (`free` returns false) stays valid. Nothing here panics
// (a panic inside the allocator would allocate again).
unsafe impl dlmalloc::Allocator for Break {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        const NONE: (*mut u8, usize, u32) = (ptr::null_mut(), 0, 0);
        if self.next.get() == 0 {
            self.next.set(ptr::addr_of!(__heap_base).addr());
            self.end_pages
                .set(ptr::addr_of!(__heap_end).addr() / WASM_PAGE);
        }
        let start = self.next.get();
        let Some(wanted) = start
            .checked_add(size)
            .and_then(|end| end.checked_next_multiple_of(PAGE))
        else {
            return NONE;
        };
        if wanted > bytes(self.end_pages.get()) {
            let pages = wasm32::memory_size(0);
            if pages != self.end_pages.get() {
                // Something else grew the memory since: the pages past the break's end are
                // not the heap's. Start again in a region of its own.
                let grown = size.div_ceil(WASM_PAGE);
                let Some(old) = grow(grown) else {
                    return NONE;
                };
                let (region, end) = (old * WASM_PAGE, bytes(old + grown));
                self.next.set(end);
                self.end_pages.set(old + grown);
                if end - region < size {
                    return NONE;
                }
                return (region as *mut u8, end - region, 0);
            }
            let more = (wanted - bytes(pages)).div_ceil(WASM_PAGE);
            let Some(old) = grow(more) else {
                return NONE;
            };
            self.end_pages.set(old + more);
            if wanted > bytes(self.end_pages.get()) {
                return NONE;
            }
        }
        self.next.set(wanted);
        (start as *mut u8, wanted - start, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        // Fresh memory reads as zeros, and the break never hands out a byte twice.
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}
