//! A server's callbacks: the `otter:genserver/server` exports of one instance of its module,
//! and the pre-instantiated module that makes such instances.
//!
//! wasmtime's generated bindings check the types of every export again for each instance,
//! walking the contract's variants and records: about 4 % of a spawn's CPU. Those types are
//! the component's, the same for every instance of it. So here they are checked on a module's
//! first instance, and later instances of the same module only look their exports up.
//!
//! Each callback's parameter and result types are written once, in the table at the end of
//! this file; the check and the call are both generated from that one line, so they cannot
//! disagree.

use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::AsContextMut;
use wasmtime::component::{ComponentExportIndex, Func, Instance, InstancePre, TypedFunc};

use crate::bindings::exports::otter::genserver::server::{
    BatchResult, CallResult, Envelope, ExitReason, Info, InitResult, NoreplyResult, ReplyTo, Term,
};

/// The interface whose functions are a server's callbacks.
const SERVER_INTERFACE: &str = "otter:genserver/server@0.2.0";

/// A callback's results as the caller sees them: the one value, or nothing.
pub(crate) trait Results {
    type Value;
    fn value(self) -> Self::Value;
}

impl<T> Results for (T,) {
    type Value = T;
    fn value(self) -> T {
        self.0
    }
}

impl Results for () {
    type Value = ();
    fn value(self) {}
}

/// A module ready to instantiate, with its callbacks' export indices.
pub(crate) struct CallbacksPre<T: 'static> {
    pre: InstancePre<T>,
    indices: Indices,
    /// An instance of this component has passed [`Callbacks::checked`].
    checked: AtomicBool,
}

impl<T: Send + 'static> CallbacksPre<T> {
    /// Find the callbacks among the component's exports.
    ///
    /// # Errors
    /// If one is missing: the error names it.
    pub(crate) fn new(pre: InstancePre<T>) -> Result<Self, String> {
        let indices = Indices::new(&pre)?;
        Ok(CallbacksPre {
            pre,
            indices,
            checked: AtomicBool::new(false),
        })
    }

    /// A new instance in `store`, and its callbacks. The first instance's exports are checked
    /// against the contract's types; later ones are not checked again.
    ///
    /// # Errors
    /// If instantiation fails (a trap or a limit), or the exports do not have the contract's
    /// types.
    pub(crate) async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
    ) -> wasmtime::Result<Callbacks> {
        let instance = self.pre.instantiate_async(&mut store).await?;
        if self.checked.load(Ordering::Acquire) {
            return Callbacks::known(&mut store, &instance, &self.indices)
                .ok_or_else(|| wasmtime::format_err!("a callback export is missing"));
        }
        let callbacks = Callbacks::checked(&mut store, &instance, &self.indices)?;
        self.checked.store(true, Ordering::Release);
        Ok(callbacks)
    }
}

/// Instantiate `component` with `linker` in `store`, and check its callbacks: for an instance
/// made once (a module's trial instance, the call floor's).
///
/// # Errors
/// As [`CallbacksPre::instantiate_async`], or if a callback is missing.
pub(crate) async fn instantiate_checked<T: Send + 'static>(
    mut store: impl AsContextMut<Data = T>,
    component: &wasmtime::component::Component,
    linker: &wasmtime::component::Linker<T>,
) -> wasmtime::Result<Callbacks> {
    let pre = linker.instantiate_pre(component)?;
    let indices = Indices::new(&pre).map_err(wasmtime::Error::msg)?;
    let instance = pre.instantiate_async(&mut store).await?;
    Callbacks::checked(&mut store, &instance, &indices)
}

/// What a callback whose results tuple is `R` (one type, or none) returns to its caller.
pub(crate) type ValueOf<R> = <R as Results>::Value;

macro_rules! callbacks {
    ($(
        $(#[$doc:meta])*
        $field:ident = $export:literal:
            fn $method:ident($($arg:ident: $ty:ty),*) -> $results:ty;
    )*) => {
        /// Where each callback is among a component's exports.
        struct Indices {
            $($field: ComponentExportIndex,)*
        }

        impl Indices {
            fn new<T>(pre: &InstancePre<T>) -> Result<Self, String> {
                let component = pre.component();
                let interface = component
                    .get_export_index(None, SERVER_INTERFACE)
                    .ok_or_else(|| format!("no instance `{SERVER_INTERFACE}`"))?;
                let find = |name: &str| {
                    component
                        .get_export_index(Some(&interface), name)
                        .ok_or_else(|| format!("its `{name}` is missing"))
                };
                Ok(Indices { $($field: find($export)?,)* })
            }
        }

        /// One instance's callbacks, each a function of the contract's type.
        #[derive(Clone)]
        pub(crate) struct Callbacks {
            $($field: Func,)*
        }

        impl Callbacks {
            /// The callbacks of `instance`, their types checked against the contract's.
            fn checked(
                mut store: impl AsContextMut,
                instance: &Instance,
                indices: &Indices,
            ) -> wasmtime::Result<Self> {
                Ok(Callbacks {
                    $($field: *instance
                        .get_typed_func::<($($ty,)*), $results>(&mut store, &indices.$field)?
                        .func(),)*
                })
            }

            /// The callbacks of `instance`, unchecked: only for an instance of a component
            /// whose callbacks [`Callbacks::checked`] accepted before.
            fn known(
                mut store: impl AsContextMut,
                instance: &Instance,
                indices: &Indices,
            ) -> Option<Self> {
                Some(Callbacks {
                    $($field: instance.get_func(&mut store, &indices.$field)?,)*
                })
            }

            $(
                $(#[$doc])*
                pub(crate) async fn $method<S>(
                    &self,
                    mut store: S,
                    $($arg: $ty),*
                ) -> wasmtime::Result<ValueOf<$results>>
                where
                    S: AsContextMut<Data: Send>,
                {
                    // SAFETY: every `Callbacks` was made by `checked`, or by `known` for an
                    // instance of a component whose same export `checked` accepted with these
                    // very types (both come from this one line of the table).
                    let func =
                        unsafe { TypedFunc::<($($ty,)*), $results>::new_unchecked(self.$field) };
                    Ok(func.call_async(store.as_context_mut(), ($($arg,)*)).await?.value())
                }
            )*
        }
    };
}

callbacks! {
    /// `init`: build the state from the start arguments.
    init = "init": fn call_init(args: &Term) -> (InitResult,);
    /// `handle-call`: a synchronous request.
    handle_call = "handle-call":
        fn call_handle_call(request: &Term, from: ReplyTo) -> (CallResult,);
    /// `handle-cast`: an asynchronous request.
    handle_cast = "handle-cast": fn call_handle_cast(request: &Term) -> (NoreplyResult,);
    /// `handle-info`: any other message.
    handle_info = "handle-info": fn call_handle_info(msg: &Info) -> (NoreplyResult,);
    /// `handle-batch`: several queued messages in one entry.
    handle_batch = "handle-batch":
        fn call_handle_batch(terms: &[u8], batch: &[Envelope]) -> (BatchResult,);
    /// `handle-continue`: work continued from a previous callback.
    handle_continue = "handle-continue":
        fn call_handle_continue(arg: &Term) -> (NoreplyResult,);
    /// `terminate`: the process is stopping with this reason.
    terminate = "terminate": fn call_terminate(reason: &ExitReason) -> ();
    /// `code-change`: migrate the state exported by version `old_vsn`.
    code_change = "code-change":
        fn call_code_change(old_vsn: &str, old_state: &Term, extra: &Term)
            -> (Result<(), String>,);
    /// `export-state`: the state, serialized.
    export_state = "export-state": fn call_export_state() -> (Term,);
    /// `restore-state`: take a serialized state as the state.
    restore_state = "restore-state":
        fn call_restore_state(state: &Term) -> (Result<(), String>,);
    /// `vsn`: the module's version.
    vsn = "vsn": fn call_vsn() -> (String,);
}

#[cfg(test)]
mod tests {
    use wasmtime::Store;
    use wasmtime::component::{Component, Linker};

    use super::*;
    use crate::engine::{EngineConfig, new_engine, to_component};

    /// A component whose `otter:genserver/server@0.2.0` has every callback, each of type
    /// `func()`: the names of the contract without its types.
    fn component_with_untyped_callbacks() -> Vec<u8> {
        use wasm_encoder::{
            CanonicalFunctionSection, ComponentExportKind, ComponentExportSection,
            ComponentInstanceSection, ComponentTypeSection, ExportKind, InstanceSection, ModuleArg,
            ModuleSection,
        };
        let module = crate::engine::tests::core_module(Some("f"), false);
        let mut component = wasm_encoder::Component::new();
        component.section(&ModuleSection(&module));
        let mut instances = InstanceSection::new();
        instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        component.section(&instances);
        let mut aliases = wasm_encoder::ComponentAliasSection::new();
        aliases.alias(wasm_encoder::Alias::CoreInstanceExport {
            instance: 0,
            kind: ExportKind::Func,
            name: "f",
        });
        component.section(&aliases);
        let mut func_types = ComponentTypeSection::new();
        func_types
            .function()
            .params(std::iter::empty::<(&str, wasm_encoder::ComponentValType)>())
            .result(None);
        component.section(&func_types);
        let mut lifts = CanonicalFunctionSection::new();
        lifts.lift(0, 0, []);
        component.section(&lifts);
        let names = [
            "init",
            "handle-call",
            "handle-cast",
            "handle-info",
            "handle-batch",
            "handle-continue",
            "terminate",
            "code-change",
            "export-state",
            "restore-state",
            "vsn",
        ];
        let mut server = ComponentInstanceSection::new();
        server.export_items(names.map(|name| (name, ComponentExportKind::Func, 0)));
        component.section(&server);
        let mut export = ComponentExportSection::new();
        export.export(SERVER_INTERFACE, ComponentExportKind::Instance, 0, None);
        component.section(&export);
        component.finish()
    }

    fn pre_of(bytes: &[u8]) -> (wasmtime::Engine, CallbacksPre<()>) {
        let (engine, _pools) = new_engine(&EngineConfig::default()).unwrap();
        let component = Component::new(&engine, bytes).unwrap();
        let mut linker = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&component).unwrap();
        let pre = CallbacksPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        (engine, pre)
    }

    fn store(engine: &wasmtime::Engine) -> Store<()> {
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX);
        store
    }

    /// The first instance's check is what later instances rely on: a component that fails it
    /// fails it again on every instance, never skipping it.
    #[tokio::test]
    async fn callbacks_of_other_types_are_refused_on_every_instance_not_only_the_first() {
        let (engine, pre) = pre_of(&component_with_untyped_callbacks());
        for _ in 0..2 {
            let err = pre.instantiate_async(&mut store(&engine)).await.err();
            let err = format!("{:#}", err.expect("callbacks of other types are refused"));
            assert!(err.contains("type"), "{err}");
        }
    }

    /// Later instances of a component that passed the check are entered as the first one.
    #[tokio::test]
    async fn later_instances_of_a_checked_module_answer_as_the_first() {
        let dir = xtask::build_guests().expect("build the guests");
        let bytes = std::fs::read(dir.join("counter.wasm")).unwrap();
        let (engine, pre) = pre_of(&to_component(&bytes).unwrap());
        for _ in 0..3 {
            let mut store = store(&engine);
            let callbacks = pre.instantiate_async(&mut store).await.unwrap();
            assert_eq!(callbacks.call_vsn(&mut store).await.unwrap(), "1");
        }
    }

    #[test]
    fn the_server_interface_is_named_with_the_contract_version() {
        let expected = format!("otter:genserver/server@{}", crate::CONTRACT_VERSION);
        assert_eq!(SERVER_INTERFACE, expected);
    }

    #[test]
    fn a_component_without_the_server_interface_is_refused_with_its_name() {
        let mut module = wasm_encoder::Component::new();
        module.section(&wasm_encoder::ComponentTypeSection::new());
        let (engine, _pools) = new_engine(&EngineConfig::default()).unwrap();
        let component = Component::new(&engine, module.finish()).unwrap();
        let pre = Linker::<()>::new(&engine)
            .instantiate_pre(&component)
            .unwrap();
        let err = CallbacksPre::new(pre).err().unwrap();
        assert_eq!(err, "no instance `otter:genserver/server@0.2.0`");
    }
}
