//! A value each process keeps for itself: in a guest, a plain static; natively (the host,
//! and guests' unit tests, which run on many threads), a thread-local.
//!
//! A guest built for wasm without the `atomics` feature runs on one thread, so a static
//! is already the process's own. `std`'s `thread_local!` there works too, but links its
//! access checks, their panic texts and the location of its source file into the guest's
//! data: bytes of a resident page of every live process.

/// Declare process-local statics, each read through `with` as a `thread_local!`'s is:
/// `NAME.with(|value| ...)`. The values are constant expressions.
#[macro_export]
#[doc(hidden)]
macro_rules! process_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;)*) => {
        $(
            #[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
            $(#[$attr])*
            $vis static $name: $crate::ProcessLocal<$ty> = $crate::ProcessLocal::new($init);
            #[cfg(not(all(target_family = "wasm", not(target_feature = "atomics"))))]
            ::std::thread_local! {
                $(#[$attr])*
                $vis static $name: $ty = const { $init };
            }
        )*
    };
}

/// A static of a single-threaded guest (see [`process_local!`]).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[doc(hidden)]
pub struct ProcessLocal<T>(T);

// SAFETY: this target has no threads (no `atomics` feature: the module is built for one
// thread, and a wasm instance cannot be shared between threads without shared memory), so
// the value is only ever reached from the thread that runs the instance; a `Cell` or
// `RefCell` inside needs no more than that.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<T> Sync for ProcessLocal<T> {}

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
impl<T> ProcessLocal<T> {
    /// The static's value.
    pub const fn new(value: T) -> Self {
        ProcessLocal(value)
    }

    /// Run `f` on the value, as `LocalKey::with` does.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0)
    }
}

/// The `Cell` shorthands `LocalKey` has, so that code reads the same on either side.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
impl<T> ProcessLocal<core::cell::Cell<T>> {
    /// The value, copied.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.0.get()
    }

    /// Replace the value.
    pub fn set(&'static self, value: T) {
        self.0.set(value);
    }

    /// The value, leaving its default.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.0.take()
    }

    /// Replace the value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.0.replace(value)
    }
}
