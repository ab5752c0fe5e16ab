//! The only place the SDK generates code from `wit/`.

wit_bindgen::generate!({
    world: "genserver",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "__export_genserver_bindings",
    default_bindings_module: "::otter_guest::__private::bindings",
    runtime_path: "::otter_guest::__private::wit_bindgen::rt",
});
