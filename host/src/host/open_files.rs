//! The files and directories a WASI process opens, counted in the node's budget of guest
//! descriptors ([`crate::descriptors`]).
//!
//! Only `wasi:filesystem/types.descriptor.open-at` makes a new OS descriptor that outlives
//! the call (a listing or a path's resolution opens one for the call alone; streams share
//! their file's), so only it is intercepted, with the descriptor's drop. Both are defined
//! again over wasmtime-wasi's in the WASI linker (shadowing the two names), and both
//! delegate to wasmtime-wasi's own implementation: the rest of the interface is its, as it
//! was. That is less to keep in step with wasmtime-wasi than a view implementing all of
//! the interface's thirty methods to change one, and a version of it that renamed the
//! interface would fail the tests that open past the budget.
//!
//! An open takes a [`DescriptorToken`] first and fails with the error code `io` if the
//! budget is spent (what the OS's `EMFILE` becomes for a guest); the process goes on. The
//! token is kept in the instance's WASI state beside a weak reference to the OS file it
//! paid for, and given back once that file is closed: wasmtime-wasi closes it when the
//! descriptor and every stream made from it are gone, which a weak reference sees without
//! any bookkeeping of ours. A descriptor's drop looks for closed files at once, and so does
//! an open that finds the budget spent; a file whose last stream closes is seen at the
//! process's next open or descriptor drop. Whatever is left goes with the instance's WASI
//! state: when the process exits, hibernates, or an upgrade that opened it is rolled back
//! (`process/resources.rs`).

use std::sync::{Arc, Weak};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use crate::descriptors::DescriptorToken;
use crate::host::ProcessCtx;

/// The WASI interface whose `open-at` is counted, as wasmtime-wasi names it.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// The files an instance opened through `open-at`, each with its share of the budget.
#[derive(Default)]
pub(crate) struct OpenFiles {
    held: Vec<(Weak<std::fs::File>, DescriptorToken)>,
}

impl OpenFiles {
    /// Give back the tokens of the files that are closed.
    fn sweep(&mut self) {
        self.held.retain(|(file, _)| file.strong_count() > 0);
    }
}

/// Define `open-at` and the descriptor's drop over wasmtime-wasi's in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ProcessCtx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, ProcessCtx>,
         (dir, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let ctx = store.data_mut();
                open_at(ctx, dir, path_flags, path, oflags, flags)
                    .await
                    .map(|r| (r,))
            })
        },
    )?;
    types.resource(
        "descriptor",
        ResourceType::host::<Descriptor>(),
        |mut store, rep| {
            let ctx = store.data_mut();
            HostDescriptor::drop(&mut ctx.filesystem(), Resource::new_own(rep))?;
            if let Some(open) = open_files(ctx) {
                open.sweep();
            }
            Ok(())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's `open-at`, within the node's budget.
async fn open_at(
    ctx: &mut ProcessCtx,
    dir: Resource<Descriptor>,
    path_flags: PathFlags,
    path: String,
    oflags: OpenFlags,
    flags: DescriptorFlags,
) -> wasmtime::Result<Result<Resource<Descriptor>, ErrorCode>> {
    let budget = ctx.node.descriptors.clone();
    let token = match budget.take(1) {
        Some(token) => token,
        None => {
            // Files this process closed since (their last stream gone) are given back
            // first; past that, the guest is refused as the OS would refuse it.
            if let Some(open) = open_files(ctx) {
                open.sweep();
            }
            match budget.take(1) {
                Some(token) => token,
                None => return Ok(Err(ErrorCode::Io)),
            }
        }
    };
    let mut view = ctx.filesystem();
    let opened =
        match HostDescriptor::open_at(&mut view, dir, path_flags, path, oflags, flags).await {
            Ok(opened) => opened,
            Err(e) => return fs::Host::convert_error_code(&mut view, e).map(Err),
        };
    let file = match view.table.get(&opened)? {
        Descriptor::File(f) => Arc::downgrade(&f.file),
        Descriptor::Dir(d) => Arc::downgrade(&d.dir),
    };
    if let Some(open) = open_files(ctx) {
        open.held.push((file, token));
    }
    Ok(Ok(opened))
}

/// The open files of the process's current instance; there is WASI state once
/// `filesystem()` has been asked for.
fn open_files(ctx: &mut ProcessCtx) -> Option<&mut OpenFiles> {
    ctx.wasi
        .as_mut()
        .and_then(|w| w.state.as_mut())
        .map(|s| &mut s.open)
}
