//! The TCP sockets a WASI process granted `connect` makes, counted in the node's budget of
//! guest descriptors ([`crate::descriptors`]), as its files are (`open_files.rs`).
//!
//! wasmtime-wasi makes the OS socket when the guest creates a `tcp-socket`, so
//! `wasi:sockets/tcp-create-socket.create-tcp-socket` and the socket's drop are defined
//! again over wasmtime-wasi's, delegating to them. A socket's streams are its children in
//! the resource table (it cannot be dropped before them), and no socket listens (grants
//! allow none), so none is accepted: the socket resource lives exactly as long as its OS
//! socket, and its token is kept by its handle. Past the budget the create fails with
//! `new-socket-limit`, WASI's name for the OS's `EMFILE`.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::TcpSocket;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::sockets::WasiSocketsView;

use crate::host::ProcessCtx;

/// The interfaces whose socket is counted, as wasmtime-wasi names them.
const CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const TCP: &str = "wasi:sockets/tcp@0.2.12";

/// Define `create-tcp-socket` and the socket's drop over wasmtime-wasi's in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ProcessCtx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(CREATE)?.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, ProcessCtx>, (family,): (IpAddressFamily,)| {
            create(store.data_mut(), family).map(|r| (r,))
        },
    )?;
    linker.instance(TCP)?.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| {
            let ctx = store.data_mut();
            HostTcpSocket::drop(&mut ctx.sockets(), Resource::new_own(rep))?;
            if let Some(state) = ctx.wasi.as_mut().and_then(|w| w.state.as_mut()) {
                state.sockets.remove(&rep);
            }
            Ok(())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's `create-tcp-socket`, within the node's budget.
fn create(
    ctx: &mut ProcessCtx,
    family: IpAddressFamily,
) -> wasmtime::Result<Result<Resource<TcpSocket>, ErrorCode>> {
    let Some(token) = ctx.node.descriptors.take(1) else {
        return Ok(Err(ErrorCode::NewSocketLimit));
    };
    let mut view = ctx.sockets();
    let socket = match tcp_create_socket::Host::create_tcp_socket(&mut view, family) {
        Ok(socket) => socket,
        Err(e) => return network::Host::convert_error_code(&mut view, e).map(Err),
    };
    if let Some(state) = ctx.wasi.as_mut().and_then(|w| w.state.as_mut()) {
        state.sockets.insert(socket.rep(), token);
    }
    Ok(Ok(socket))
}
