//! The pools alone, and real wasm on them: bounds and stack limits still trap, slots are
//! reused zeroed, and memories grow to their slot and no further.

use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, MemArg,
    MemorySection, MemoryType as MemType, TypeSection, ValType,
};
use wasmtime::{Engine, Instance, MemoryCreator, MemoryType, Module, StackCreator, Store, Trap};

use super::*;
use crate::engine::EngineConfig;

fn engine(max_memory: usize) -> Engine {
    let mut cfg = EngineConfig::default();
    cfg.max_memory(max_memory);
    crate::engine::new_engine(&cfg).expect("engine").0
}

/// A core module exporting a `memory` of `pages` pages, `load(addr) -> i32`,
/// `store(addr, value)`, `grow(pages) -> i32` and `depth(n) -> n`, which recurses n deep.
fn module(engine: &Engine, pages: u64) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I32], []);
    let mut funcs = FunctionSection::new();
    for ty in [0, 1, 0, 0] {
        funcs.function(ty);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemType {
        minimum: pages,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    for (i, name) in ["load", "store", "grow", "depth"].into_iter().enumerate() {
        exports.export(name, ExportKind::Func, i as u32);
    }
    exports.export("memory", ExportKind::Memory, 0);
    let arg = MemArg {
        offset: 0,
        align: 0,
        memory_index: 0,
    };
    let mut code = CodeSection::new();
    let mut load = Function::new([]);
    load.instructions().local_get(0).i32_load(arg).end();
    code.function(&load);
    let mut store = Function::new([]);
    store
        .instructions()
        .local_get(0)
        .local_get(1)
        .i32_store(arg)
        .end();
    code.function(&store);
    let mut grow = Function::new([]);
    grow.instructions().local_get(0).memory_grow(0).end();
    code.function(&grow);
    let mut depth = Function::new([]);
    depth
        .instructions()
        .local_get(0)
        .i32_eqz()
        .if_(BlockType::Result(ValType::I32))
        .i32_const(0)
        .else_()
        .local_get(0)
        .i32_const(1)
        .i32_sub()
        .call(3)
        .i32_const(1)
        .i32_add()
        .end()
        .end();
    code.function(&depth);
    let mut m = wasm_encoder::Module::new();
    m.section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&code);
    Module::new(engine, m.finish()).expect("module compiles")
}

struct Guest {
    store: Store<()>,
    instance: Instance,
}

impl Guest {
    async fn new(engine: &Engine, module: &Module) -> Guest {
        let mut store = Store::new(engine, ());
        // The engine interrupts at epochs; nothing advances it here.
        store.set_epoch_deadline(u64::MAX);
        let instance = Instance::new_async(&mut store, module, &[])
            .await
            .expect("instantiate");
        Guest { store, instance }
    }

    /// Runs on a fiber, so on a pooled stack.
    async fn call<P, R>(&mut self, name: &str, params: P) -> wasmtime::Result<R>
    where
        P: wasmtime::WasmParams + Sync,
        R: wasmtime::WasmResults + Sync,
    {
        let f = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .expect("export");
        f.call_async(&mut self.store, params).await
    }

    async fn load(&mut self, addr: u32) -> wasmtime::Result<i32> {
        self.call("load", addr as i32).await
    }

    async fn store(&mut self, addr: u32, value: i32) {
        self.call::<(i32, i32), ()>("store", (addr as i32, value))
            .await
            .expect("store in bounds");
    }

    async fn grow(&mut self, pages: u32) -> i32 {
        self.call("grow", pages as i32).await.expect("grow runs")
    }

    fn memory_base(&mut self) -> *mut u8 {
        let memory = self
            .instance
            .get_memory(&mut self.store, "memory")
            .expect("a memory");
        memory.data_ptr(&self.store)
    }
}

fn is_trap(r: wasmtime::Result<impl std::fmt::Debug>, trap: Trap) -> bool {
    match r {
        Ok(v) => panic!("expected {trap:?}, got Ok({v:?})"),
        Err(e) => e.downcast_ref::<Trap>() == Some(&trap),
    }
}

fn read(slots: &Slots, slot: Slot) -> &[u8] {
    // SAFETY: `slot` is this test's, `slot_size` bytes long, and outlives the borrow of `slots`.
    unsafe { std::slice::from_raw_parts(slot.base.0.as_ptr(), slots.slot_size) }
}

#[test]
fn a_released_memory_slot_is_reused_first_and_reads_as_zeros() {
    let page = rustix::param::page_size();
    let slots = Slots::new(8 * page, 0);
    let a = slots.acquire().expect("slot");
    let b = slots.acquire().expect("slot");
    assert_ne!(a.base, b.base);
    // Touch every other page, so that some pages are resident and some are not.
    for p in (0..8).step_by(2) {
        // SAFETY: page `p` of `a`, this test's slot.
        unsafe { a.base.0.as_ptr().add(p * page).write_bytes(0xAB, page) };
    }
    // SAFETY: released once, unused after.
    unsafe { slots.release(a, slots.slot_size, Scrub::Zeros) };
    assert_eq!(slots.lock().warm.len(), 1, "a small memory stays warm");
    let again = slots.acquire().expect("slot");
    assert_eq!(again.base, a.base, "the released slot is reused first");
    assert!(
        read(&slots, again).iter().all(|&b| b == 0),
        "a reused memory slot reads as zeros"
    );
}

#[test]
fn a_released_memory_too_large_to_zero_goes_back_to_the_kernel_and_reads_as_zeros() {
    let slots = Slots::new(2 * WARM_BYTES, 0);
    let a = slots.acquire().expect("slot");
    // SAFETY: `a` is this test's slot, `slot_size` bytes long.
    unsafe { a.base.0.as_ptr().write_bytes(0xCD, slots.slot_size) };
    // SAFETY: released once, unused after.
    unsafe { slots.release(a, slots.slot_size, Scrub::Zeros) };
    assert_eq!(slots.lock().warm.len(), 0);
    let again = slots.acquire().expect("slot");
    assert_eq!(again.base, a.base);
    assert!(read(&slots, again).iter().all(|&b| b == 0));
}

#[test]
fn warm_slots_are_bounded_and_the_rest_read_as_zeros() {
    let page = rustix::param::page_size();
    let slots = Slots::new(page, 0);
    let held: Vec<Slot> = (0..WARM_SLOTS + discard::BATCH + 3)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    for slot in &held {
        // SAFETY: this test's slot, one page.
        unsafe { slot.base.0.as_ptr().write_bytes(0xEF, page) };
        // SAFETY: released once, unused after.
        unsafe { slots.release(*slot, page, Scrub::Nothing) };
    }
    assert_eq!(slots.lock().warm.len(), WARM_SLOTS);
    assert_eq!(
        slots.lock().free.len(),
        discard::BATCH,
        "one batch given back"
    );
    assert_eq!(slots.lock().discarding.len(), 3, "the next batch waits");
    let cold = slots.lock().free[0];
    assert!(read(&slots, cold).iter().all(|&b| b == 0));
}

/// Resident pages among a slot's first `len` bytes.
fn resident_pages(slots: &Slots, slot: Slot, len: usize) -> usize {
    let mut resident = Vec::new();
    // SAFETY: the slot's first bytes, page aligned, inside its chunk.
    assert!(unsafe { slots.residency(slot.base.0.as_ptr(), len, &mut resident) });
    resident.iter().filter(|r| **r).count()
}

#[test]
fn released_slots_past_the_warm_ones_go_back_to_the_kernel_a_batch_at_a_time() {
    let page = rustix::param::page_size();
    let slots = Slots::new(2 * page, 0);
    let held: Vec<Slot> = (0..WARM_SLOTS + discard::BATCH)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    let (warm, cold) = held.split_at(WARM_SLOTS);
    let (waiting, last) = cold.split_at(discard::BATCH - 1);
    for slot in warm.iter().chain(waiting) {
        // SAFETY: this test's slot, two pages, written through, then released once.
        unsafe {
            slot.base.0.as_ptr().write_bytes(0x5A, 2 * page);
            slots.release(*slot, 2 * page, Scrub::Nothing);
        }
    }
    assert!(slots.lock().free.is_empty(), "given back before its batch");
    for slot in waiting {
        assert_eq!(
            resident_pages(&slots, *slot, 2 * page),
            2,
            "a waiting slot kept its pages"
        );
    }
    // SAFETY: as above.
    unsafe {
        last[0].base.0.as_ptr().write_bytes(0x5A, 2 * page);
        slots.release(last[0], 2 * page, Scrub::Nothing);
    }
    let state = slots.lock();
    assert!(state.discarding.is_empty());
    assert_eq!(
        state.free.len(),
        discard::BATCH,
        "the whole batch went back"
    );
    let free = state.free.clone();
    drop(state);
    for slot in free {
        assert_eq!(
            resident_pages(&slots, slot, 2 * page),
            0,
            "a slot given back kept pages"
        );
        assert!(read(&slots, slot).iter().all(|&b| b == 0));
        assert_eq!(slot.prepared, 0);
    }
}

#[test]
fn a_slot_waiting_to_be_given_back_is_handed_to_no_one() {
    let page = rustix::param::page_size();
    let slots = Slots::new(page, 0);
    let held: Vec<Slot> = (0..=WARM_SLOTS)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    for slot in &held {
        // SAFETY: this test's slot, one page, written through, then released once.
        unsafe {
            slot.base.0.as_ptr().write_bytes(0x77, page);
            slots.release(*slot, page, Scrub::Nothing);
        }
    }
    let waiting = slots.lock().discarding[0].0;
    // Every warm slot, then a fresh one: never the waiting one.
    for _ in 0..=WARM_SLOTS {
        let slot = slots.acquire().expect("slot");
        assert_ne!(
            slot.base, waiting.base,
            "a slot not yet given back was handed out"
        );
    }
}

#[test]
fn warm_slots_are_bounded_in_bytes_too() {
    // Stacks of 4 MiB, each written through: a guest recursing deeply in many processes.
    let slot_size = 4 << 20;
    let slots = Slots::new(slot_size, 0);
    let fits = WARM_POOL_BYTES / slot_size;
    let held: Vec<Slot> = (0..fits + 3)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    for slot in &held {
        // SAFETY: released once, unused after.
        unsafe { slots.release(*slot, slot_size, Scrub::Nothing) };
    }
    let state = slots.lock();
    assert_eq!(
        state.warm.len(),
        fits,
        "more deep stacks kept than the byte budget"
    );
    assert_eq!(state.warm_bytes, fits * slot_size);
    assert_eq!(
        state.free.len(),
        3,
        "larger than a warm memory: back at once"
    );
    drop(state);
    slots.acquire().expect("a warm slot");
    assert_eq!(
        slots.lock().warm_bytes,
        (fits - 1) * slot_size,
        "handed out, uncounted"
    );
}

#[test]
fn a_warm_slot_counts_what_an_earlier_holder_left_resident() {
    let page = rustix::param::page_size();
    let slots = Slots::new(WARM_BYTES, 0);
    let slot = slots.acquire().expect("slot");
    // SAFETY: this test's slot, written through, then released once.
    unsafe {
        slot.base.0.as_ptr().write_bytes(0xAB, WARM_BYTES);
        slots.release(slot, WARM_BYTES, Scrub::Zeros);
    }
    assert_eq!(slots.lock().warm_bytes, WARM_BYTES);
    // A small process takes it back warm and writes one page: the rest stays resident.
    let again = slots.acquire().expect("the warm slot");
    assert_eq!(again.base, slot.base);
    // SAFETY: released once, unused after.
    unsafe { slots.release(again, page, Scrub::Zeros) };
    assert_eq!(
        slots.lock().warm_bytes,
        WARM_BYTES,
        "the pages its first holder left are no longer counted"
    );
}

#[test]
fn a_chunk_holds_many_slots() {
    let page = rustix::param::page_size();
    let slots = Slots::new(page, page);
    let held: Vec<Slot> = (0..SLOTS_PER_CHUNK + 1)
        .map(|_| slots.acquire().expect("slot"))
        .collect();
    assert_eq!(slots.lock().chunks.len(), 2);
    assert_eq!(held.iter().filter(|s| s.lowest).count(), 2);
    let first = held[0].base.0.as_ptr();
    let last = held[SLOTS_PER_CHUNK - 1].base.0.as_ptr();
    assert_eq!(last.addr() - first.addr(), (SLOTS_PER_CHUNK - 1) * page);
}

#[tokio::test]
async fn out_of_bounds_access_inside_a_slot_traps() {
    let engine = engine(16 << 20);
    let module = module(&engine, 1);
    let mut guest = Guest::new(&engine, &module).await;
    assert_eq!(guest.load(65532).await.expect("in bounds"), 0);
    // Past the memory's size: inside its slot, which is mapped read-write, and past it.
    for addr in [65533, 65536, 1 << 20, (16 << 20) - 4] {
        assert!(
            is_trap(guest.load(addr).await, Trap::MemoryOutOfBounds),
            "load at {addr} traps"
        );
    }
    assert_eq!(guest.grow(1).await, 1);
    assert_eq!(guest.load(65536).await.expect("grown"), 0);
    assert!(is_trap(guest.load(131072).await, Trap::MemoryOutOfBounds));
}

#[tokio::test]
async fn memory_grows_to_its_slot_and_no_further() {
    let engine = engine(1 << 20);
    let module = module(&engine, 1);
    let mut guest = Guest::new(&engine, &module).await;
    assert_eq!(guest.grow(16).await, -1, "17 pages exceed a 1 MiB slot");
    assert_eq!(guest.grow(15).await, 1);
    assert_eq!(
        guest
            .load((1 << 20) - 4)
            .await
            .expect("the slot's last word"),
        0
    );
    assert_eq!(guest.grow(1).await, -1);
}

/// Wasm pages in a small memory slot.
const SMALL_PAGES: u32 = (SMALL_MEMORY_SLOT >> 16) as u32;

#[tokio::test]
async fn a_memory_outgrowing_its_small_slot_moves_once_with_its_bytes() {
    let cap = 16 << 20;
    let engine = engine(cap);
    let module = module(&engine, 1);
    let mut guest = Guest::new(&engine, &module).await;
    let small = guest.memory_base();
    guest.store(8, 11).await;
    assert_eq!(guest.grow(SMALL_PAGES - 1).await, 1);
    assert_eq!(
        guest.memory_base(),
        small,
        "growth within the small slot stays"
    );
    let last = SMALL_MEMORY_SLOT as u32 - 4;
    guest.store(last, 22).await;
    assert_eq!(guest.grow(1).await, SMALL_PAGES as i32);
    let full = guest.memory_base();
    assert_ne!(full, small, "growth past the small slot moves the memory");
    assert_eq!(guest.load(8).await.expect("moved"), 11);
    assert_eq!(guest.load(last).await.expect("moved"), 22);
    assert_eq!(guest.load(last + 4).await.expect("grown"), 0);
    // Then it grows in place, to the cap and no further.
    let rest = (cap >> 16) as u32 - SMALL_PAGES - 1;
    assert_eq!(guest.grow(rest).await, SMALL_PAGES as i32 + 1);
    assert_eq!(
        guest.memory_base(),
        full,
        "growth within the full slot stays"
    );
    assert_eq!(
        guest
            .load(cap as u32 - 4)
            .await
            .expect("the cap's last word"),
        0
    );
    assert_eq!(guest.grow(1).await, -1);
    assert!(is_trap(
        guest.load(cap as u32).await,
        Trap::MemoryOutOfBounds
    ));
    assert_eq!(guest.load(8).await.expect("still there"), 11);
    // The small slot it left is handed out again, reading as zeros.
    let mut next = Guest::new(&engine, &module).await;
    assert_eq!(next.memory_base(), small, "the small slot is reused");
    assert_eq!(next.load(8).await.expect("in bounds"), 0);
    assert_eq!(next.grow(SMALL_PAGES - 1).await, 1);
    assert_eq!(next.load(last).await.expect("in bounds"), 0);
}

#[test]
fn a_memory_starts_in_a_small_slot_unless_it_needs_more_at_start() {
    let cap = 16 << 20;
    let full = Slots::preparing(Slots::new(cap, 0));
    let small = Slots::preparing(Slots::new(SMALL_MEMORY_SLOT, 0));
    let pool = MemoryPool {
        small: Some(small),
        full,
    };
    let one_page = pool
        .new_memory(MemoryType::new(1, None), 1 << 16, None, Some(0), 0)
        .expect("a memory");
    assert_eq!(one_page.byte_capacity(), SMALL_MEMORY_SLOT);
    let fits = pool
        .new_memory(
            MemoryType::new(SMALL_PAGES, None),
            SMALL_MEMORY_SLOT,
            None,
            Some(0),
            0,
        )
        .expect("a memory");
    assert_eq!(fits.byte_capacity(), SMALL_MEMORY_SLOT);
    let larger = pool
        .new_memory(
            MemoryType::new(SMALL_PAGES + 1, None),
            SMALL_MEMORY_SLOT + (1 << 16),
            None,
            Some(0),
            0,
        )
        .expect("a memory");
    assert_eq!(larger.byte_capacity(), cap);
    // Eight small slots to a page-table page (2 MiB).
    assert_eq!(
        (fits.as_ptr() as usize).abs_diff(one_page.as_ptr() as usize),
        SMALL_MEMORY_SLOT
    );
}

#[tokio::test]
async fn a_memory_without_small_slots_never_moves() {
    // A cap no larger than a small slot: one size of slot.
    let engine = engine(SMALL_MEMORY_SLOT);
    let module = module(&engine, 1);
    let mut guest = Guest::new(&engine, &module).await;
    let base = guest.memory_base();
    assert_eq!(guest.grow(SMALL_PAGES - 1).await, 1);
    assert_eq!(guest.memory_base(), base);
    assert_eq!(guest.grow(1).await, -1);
}

#[tokio::test]
async fn a_module_larger_than_the_slot_does_not_instantiate() {
    let engine = engine(1 << 20);
    let module = module(&engine, 17);
    let mut store = Store::new(&engine, ());
    let err = Instance::new_async(&mut store, &module, &[])
        .await
        .expect_err("17 pages do not fit");
    assert!(format!("{err:#}").contains("limit per process"), "{err:#}");
}

#[tokio::test]
async fn a_released_memory_is_zeroed_for_the_next_instance() {
    let engine = engine(16 << 20);
    let module = module(&engine, 2);
    let mut first = Guest::new(&engine, &module).await;
    let base = first.memory_base();
    first
        .call::<(i32, i32), ()>("store", (70000, 7))
        .await
        .expect("store");
    assert_eq!(first.load(70000).await.expect("load"), 7);
    drop(first);
    let mut second = Guest::new(&engine, &module).await;
    assert_eq!(second.memory_base(), base, "the slot is reused");
    assert_eq!(second.load(70000).await.expect("load"), 0);
}

#[tokio::test]
async fn wasm_stack_overflow_traps_on_a_pooled_stack() {
    let engine = engine(16 << 20);
    let module = module(&engine, 1);
    let mut guest = Guest::new(&engine, &module).await;
    assert_eq!(
        guest.call::<i32, i32>("depth", 100).await.expect("runs"),
        100
    );
    assert!(is_trap(
        guest.call::<i32, i32>("depth", 10_000_000).await,
        Trap::StackOverflow
    ));
    // The store and its stack still work.
    assert_eq!(
        guest.call::<i32, i32>("depth", 1000).await.expect("runs"),
        1000
    );
    // Processes side by side get distinct stacks, and they survive each other's overflow.
    let mut other = Guest::new(&engine, &module).await;
    assert!(is_trap(
        other.call::<i32, i32>("depth", 10_000_000).await,
        Trap::StackOverflow
    ));
    assert_eq!(
        guest.call::<i32, i32>("depth", 1000).await.expect("runs"),
        1000
    );
}

/// Whether the running kernel's version is at least `major.minor`.
pub(super) fn kernel_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: `uname` fills the struct it is given.
    let uts = unsafe {
        let mut uts = std::mem::zeroed::<libc::utsname>();
        assert_eq!(libc::uname(&mut uts), 0);
        uts
    };
    // SAFETY: the kernel NUL-terminates the release string within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// Whether a forked child that writes a byte at `addr` dies of SIGSEGV.
fn write_faults(addr: *mut u8) -> bool {
    // SAFETY: between fork and _exit the child only writes one byte (or faults); the parent
    // only waits for it.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            std::ptr::write_volatile(addr, 1);
            libc::_exit(0);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV
    }
}

#[test]
fn every_fiber_stack_has_a_guard_page_below_it_that_survives_reuse() {
    let page = rustix::param::page_size();
    let mut slots = Slots::new(64 << 10, page);
    slots.slot_guard = page;
    let pool = StackPool {
        slots: Arc::new(slots),
    };
    // Not the lowest slot of its chunk, whose chunk guard would also catch an overrun.
    let stacks: Vec<_> = (0..3)
        .map(|_| pool.new_stack(60 << 10, false).unwrap())
        .collect();
    let stack = &stacks[1];
    let guard = stack.guard_range();
    if guard.is_empty() {
        assert!(
            !kernel_at_least(6, 13),
            "MADV_GUARD_INSTALL exists since Linux 6.13"
        );
        eprintln!("this kernel has no MADV_GUARD_INSTALL; nothing to check");
        return;
    }
    assert_eq!(
        guard.end.addr(),
        stack.range().start,
        "the guard is just below the stack"
    );
    assert_eq!(guard.end.addr() - guard.start.addr(), page);
    assert!(write_faults(guard.start), "writing the guard page faults");
    assert!(write_faults(guard.end.wrapping_sub(1)));
    assert!(!write_faults(guard.end), "the stack itself is writable");
    assert_eq!(
        stacks[0].range().end,
        guard.start.addr(),
        "the guard separates the stack from its neighbour below"
    );
    // The guard survives the slot going back to the kernel and being handed out again.
    let slot = pool.slots.acquire().unwrap();
    let base = slot.base.0.as_ptr();
    // SAFETY: the slot was just acquired and is used by nobody.
    unsafe { pool.slots.release(slot, pool.slots.slot_size, Scrub::Zeros) };
    drop(stacks);
    let again: Vec<_> = (0..4)
        .map(|_| pool.new_stack(60 << 10, false).unwrap())
        .collect();
    let reused = again
        .iter()
        .find(|s| s.guard_range().start == base)
        .expect("the released slot is handed out again");
    assert!(write_faults(reused.guard_range().start));
}

#[test]
fn slots_are_never_backed_by_huge_pages() {
    let slots = Slots::new(4 << 20, 0);
    let slot = slots.acquire().expect("slot");
    let addr = slot.base.0.as_ptr().addr();
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut mapping = None;
    for line in smaps.lines() {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = range.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            mapping = (start..end).contains(&addr).then_some(());
            continue;
        }
        if mapping.is_some()
            && let Some(flags) = line.strip_prefix("VmFlags:")
        {
            assert!(
                flags.split_whitespace().any(|f| f == "nh"),
                "the chunk may get transparent huge pages: {flags}"
            );
            return;
        }
    }
    panic!("the slot's mapping is not in /proc/self/smaps");
}

#[test]
fn resident_runs_are_the_stretches_of_resident_pages() {
    let runs = |r: &[bool]| residency::resident_runs(r).collect::<Vec<_>>();
    assert_eq!(runs(&[]), vec![]);
    assert_eq!(runs(&[false, false]), vec![]);
    assert_eq!(runs(&[true, true, true]), vec![0..3]);
    assert_eq!(
        runs(&[false, true, true, false, false, true]),
        vec![1..3, 5..6]
    );
}

#[test]
fn a_guard_page_refused_for_the_moment_is_not_taken_for_a_kernel_without_guards() {
    for errno in [libc::EINVAL, libc::ENOSYS, libc::EPERM] {
        assert!(guard_unsupported(&io::Error::from_raw_os_error(errno)));
    }
    for errno in [libc::ENOMEM, libc::EINTR, libc::EAGAIN] {
        assert!(
            !guard_unsupported(&io::Error::from_raw_os_error(errno)),
            "errno {errno} is of the moment: the slot waits, unguarded stacks are not the rule"
        );
    }
}
