//! Freed small blocks, kept for the next allocation of their size.
//!
//! A server allocates and frees the same few small sizes for every message: the request's
//! bytes, its decoded strings, the reply's buffer, the host's `cabi_realloc` of a call's
//! reply. `dlmalloc` finds each in its bins, splits and coalesces chunks, and checks its
//! invariants; in a many → one benchmark the guests' allocator was ~6 % of all the CPU. Here a
//! freed block of at most [`LARGEST`] bytes (alignment at most [`ALIGN`]) goes on a list of
//! its size class, and the next allocation of that class takes it back: a pointer read and a
//! write. At most [`KEPT`] blocks a class are kept (about 136 KiB in all, if every class is
//! full; the memory was `dlmalloc`'s free chunks before, resident all the same); past it a
//! block goes back to the allocator beneath, and so do all kept blocks when the allocator
//! beneath runs out of memory (they cannot serve other sizes while kept).
//!
//! Every block of a class is allocated beneath at the class's full size, so any block on a
//! list fits any request of its class.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr;

/// The step between size classes: blocks of 16, 32, … bytes.
const STEP: usize = 16;

/// How many classes there are: the largest kept block is [`LARGEST`] bytes.
const CLASSES: usize = 16;

/// The largest block kept.
pub(crate) const LARGEST: usize = STEP * CLASSES;

/// The largest alignment kept: what the allocator beneath gives every block without an
/// aligned path (and what nearly every allocation asks for).
pub(crate) const ALIGN: usize = 8;

/// How many free blocks a class keeps.
pub(crate) const KEPT: u16 = 64;

/// An allocator that keeps freed small blocks for reuse, in front of `A`.
///
/// Not `Sync`: it is for one thread (the guest's), which the type that holds it vouches for.
pub(crate) struct SmallBlocks<A> {
    inner: A,
    /// The first free block of each class; a free block's first word points to the next.
    free: [Cell<*mut u8>; CLASSES],
    /// How many blocks each class's list holds.
    kept: [Cell<u16>; CLASSES],
}

/// The class of an allocation of `size` bytes aligned to `align`, if it is small enough.
fn class(size: usize, align: usize) -> Option<usize> {
    // `min`, a no-op here, shows the compiler that a class indexes the lists in bounds: a
    // bounds check would put its panic text and this file's path into every guest's data.
    (size <= LARGEST && align <= ALIGN).then(|| (size.max(1).div_ceil(STEP) - 1).min(CLASSES - 1))
}

/// The layout every block of class `c` is allocated with beneath.
fn class_layout(c: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16 below 4 GiB, and 8 is a power of two.
    unsafe { Layout::from_size_align_unchecked((c + 1) * STEP, ALIGN) }
}

impl<A> SmallBlocks<A> {
    /// No block kept yet, in front of `inner`.
    pub(crate) const fn new(inner: A) -> Self {
        SmallBlocks {
            inner,
            free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            kept: [const { Cell::new(0) }; CLASSES],
        }
    }

    /// Give every kept block back beneath: when the allocator beneath runs out, the kept
    /// blocks may be what it lacks (they cannot serve other sizes while kept).
    fn give_back(&self)
    where
        A: GlobalAlloc,
    {
        for c in 0..CLASSES {
            while let Some(block) = self.take(c) {
                // SAFETY: a kept block was allocated beneath with its class's layout.
                unsafe { self.inner.dealloc(block, class_layout(c)) };
            }
        }
    }

    /// `attempt` of the allocator beneath, once more after giving the kept blocks back if it
    /// fails.
    fn or_after_give_back(&self, attempt: impl Fn(&A) -> *mut u8) -> *mut u8
    where
        A: GlobalAlloc,
    {
        let block = attempt(&self.inner);
        if !block.is_null() || self.kept.iter().all(|k| k.get() == 0) {
            return block;
        }
        self.give_back();
        attempt(&self.inner)
    }

    /// A kept block of class `c`, taken off its list.
    fn take(&self, c: usize) -> Option<*mut u8> {
        let block = self.free[c].get();
        if block.is_null() {
            return None;
        }
        // SAFETY: a block on the list is a free block of at least 16 bytes, aligned to 8,
        // whose first word `keep` wrote.
        self.free[c].set(unsafe { block.cast::<*mut u8>().read() });
        self.kept[c].set(self.kept[c].get() - 1);
        Some(block)
    }
}

// SAFETY: a small block is allocated beneath with its class's layout and either kept (never
// handed out twice: it is off every list while allocated) or freed beneath with that same
// layout; other allocations go to `inner` unchanged. A kept block is at least its class's
// size, so it fits every request of the class.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallBlocks<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(c) => match self.take(c) {
                Some(block) => block,
                // SAFETY: a valid, non-zero layout.
                None => self.or_after_give_back(|a| unsafe { a.alloc(class_layout(c)) }),
            },
            // SAFETY: the caller's layout, as given.
            None => self.or_after_give_back(|a| unsafe { a.alloc(layout) }),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(c) => match self.take(c) {
                Some(block) => {
                    // SAFETY: the block holds at least `layout.size()` bytes.
                    unsafe { ptr::write_bytes(block, 0, layout.size()) };
                    block
                }
                // SAFETY: as in `alloc`.
                None => self.or_after_give_back(|a| unsafe { a.alloc_zeroed(class_layout(c)) }),
            },
            // SAFETY: as in `alloc`.
            None => self.or_after_give_back(|a| unsafe { a.alloc_zeroed(layout) }),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout.size(), layout.align()) {
            Some(c) if self.kept[c].get() < KEPT => {
                // SAFETY: the caller gives back a block of this allocator, of class `c`: at
                // least 16 bytes aligned to 8, no longer used by anyone.
                unsafe { block.cast::<*mut u8>().write(self.free[c].get()) };
                self.free[c].set(block);
                self.kept[c].set(self.kept[c].get() + 1);
            }
            // SAFETY: allocated beneath with its class's layout.
            Some(c) => unsafe { self.inner.dealloc(block, class_layout(c)) },
            // SAFETY: allocated beneath with this layout.
            None => unsafe { self.inner.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old, new) = (
            class(layout.size(), layout.align()),
            class(new_size, layout.align()),
        );
        match (old, new) {
            // The block already has the new class's size.
            (Some(o), Some(n)) if o == n => block,
            // SAFETY: the caller's block and layout, as given; a failed `realloc` leaves the
            // block as it was, so it can be tried again.
            (None, None) => {
                self.or_after_give_back(|a| unsafe { a.realloc(block, layout, new_size) })
            }
            _ => {
                // SAFETY: `realloc`'s contract makes `new_size` with this alignment a valid
                // layout.
                let to = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a valid layout.
                let moved = unsafe { self.alloc(to) };
                if !moved.is_null() {
                    // SAFETY: both blocks hold at least the bytes copied, and differ.
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::{ALIGN, KEPT, LARGEST, SmallBlocks};

    /// The system allocator, counting the blocks it has out and noting the size of the last.
    #[derive(Default)]
    struct Counted {
        out: Cell<isize>,
        last: Cell<usize>,
    }

    unsafe impl GlobalAlloc for Counted {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.out.set(self.out.get() + 1);
            self.last.set(layout.size());
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            self.out.set(self.out.get() - 1);
            unsafe { System.dealloc(block, layout) }
        }
    }

    /// The system allocator, refusing once `limit` blocks are out.
    struct Bounded {
        out: Cell<usize>,
        limit: usize,
    }

    unsafe impl GlobalAlloc for Bounded {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if self.out.get() == self.limit {
                return std::ptr::null_mut();
            }
            self.out.set(self.out.get() + 1);
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            self.out.set(self.out.get() - 1);
            unsafe { System.dealloc(block, layout) }
        }
    }

    #[test]
    fn kept_blocks_go_back_beneath_when_it_runs_out() {
        let heap = SmallBlocks::new(Bounded {
            out: Cell::new(0),
            limit: 4,
        });
        unsafe {
            let small: Vec<_> = (0..4).map(|_| heap.alloc(layout(16))).collect();
            for b in small {
                heap.dealloc(b, layout(16));
            }
            // Four blocks kept, none free beneath: a large block needs them given back.
            let big = heap.alloc(layout(1000));
            assert!(!big.is_null());
            assert_eq!(heap.inner.out.get(), 1);
            heap.dealloc(big, layout(1000));
        }
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 1).unwrap()
    }

    #[test]
    fn a_freed_small_block_is_handed_out_again_for_any_size_of_its_class() {
        let heap = SmallBlocks::new(Counted::default());
        unsafe {
            let a = heap.alloc(layout(17));
            assert_eq!(
                heap.inner.last.get(),
                32,
                "allocated beneath at its class's size"
            );
            heap.dealloc(a, layout(17));
            // 32 bytes is the same class as 17: the same block, and all 32 bytes are its.
            let b = heap.alloc(layout(32));
            assert_eq!(a, b);
            std::ptr::write_bytes(b, 0xAB, 32);
            let c = heap.alloc(layout(32));
            assert_ne!(b, c, "a block out is not handed out twice");
            heap.dealloc(b, layout(32));
            heap.dealloc(c, layout(32));
        }
        assert_eq!(heap.inner.out.get(), 2, "both kept, none freed beneath");
    }

    #[test]
    fn past_the_kept_bound_blocks_go_back_beneath() {
        let heap = SmallBlocks::new(Counted::default());
        let n = usize::from(KEPT) + 10;
        unsafe {
            let blocks: Vec<_> = (0..n).map(|_| heap.alloc(layout(100))).collect();
            for b in blocks {
                heap.dealloc(b, layout(100));
            }
        }
        assert_eq!(heap.inner.out.get(), isize::try_from(KEPT).unwrap());
    }

    #[test]
    fn large_and_overaligned_allocations_pass_through() {
        let heap = SmallBlocks::new(Counted::default());
        unsafe {
            let big = heap.alloc(layout(LARGEST + 1));
            heap.dealloc(big, layout(LARGEST + 1));
            let aligned = Layout::from_size_align(16, ALIGN * 2).unwrap();
            let a = heap.alloc(aligned);
            assert_eq!(a.addr() % (ALIGN * 2), 0);
            heap.dealloc(a, aligned);
        }
        assert_eq!(heap.inner.out.get(), 0, "nothing kept");
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_the_block_within_one() {
        let heap = SmallBlocks::new(Counted::default());
        unsafe {
            let a = heap.alloc(layout(20));
            for i in 0..20 {
                a.add(i).write(i as u8);
            }
            assert_eq!(heap.realloc(a, layout(20), 30), a, "same class");
            let b = heap.realloc(a, layout(30), 200);
            assert_ne!(a, b, "a 32-byte block cannot hold 200 bytes");
            assert_eq!(
                heap.inner.last.get(),
                208,
                "moved to a block of the new class"
            );
            let c = heap.realloc(b, layout(200), 1000);
            let d = heap.realloc(c, layout(1000), 10);
            for i in 0..10 {
                assert_eq!(d.add(i).read(), i as u8);
            }
            heap.dealloc(d, layout(10));
        }
    }

    #[test]
    fn a_zeroed_allocation_reads_zeros_from_a_reused_block() {
        let heap = SmallBlocks::new(Counted::default());
        unsafe {
            let a = heap.alloc(layout(48));
            std::ptr::write_bytes(a, 0xFF, 48);
            heap.dealloc(a, layout(48));
            let b = heap.alloc_zeroed(layout(48));
            assert_eq!(a, b);
            assert!((0..48).all(|i| b.add(i).read() == 0));
            heap.dealloc(b, layout(48));
        }
    }
}
