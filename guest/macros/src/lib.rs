//! Procedural macros of the xxfunc SDK: `#[xxfunc::main]`.
//!
//! This crate owns only the code generation; the runtime it calls lives in
//! `xxfunc::__private`. It never does anything at run time itself. Use it through the
//! `xxfunc` crate (`#[xxfunc::main]`), not directly.
//!
//! Accepted forms (the function must be named `main`):
//!
//! ```ignore
//! #[xxfunc::main] fn main(event: xxfunc::Event) -> Result<(), E> { .. }        // E: Display
//! #[xxfunc::main] async fn main(event: xxfunc::Event) -> Result<(), E> { .. }
//! #[xxfunc::main] async fn main(data: &[u8]) { .. }                            // raw envelope
//! #[xxfunc::main] fn main(data: &[u8]) -> Result<(), E> { .. }
//! ```
//!
//! The crate may be `#![no_main]` or not: functions written for the original xxfunc
//! (`#![no_main]` with `async fn main(data: &[u8])`) build and run unchanged. Under
//! `#![no_main]` rustc emits no entry point, so the macro also exports the C entry that
//! wasi-libc's `_start` calls (`__main_argc_argv`); otherwise rustc's entry is used.
//!
//! The return type may also be `()`. The generated `fn main` reads stdin fully, decodes
//! the envelope (event forms), runs the function (async forms on a small executor),
//! flushes emitted records and exits 0; an error prints on stderr and exits 1, a bad
//! envelope exits 2, a panic prints and exits 101.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Type, parse_macro_input};

/// Turns `fn main(event: xxfunc::Event)` (or the `async` / raw `&[u8]` forms) into the
/// WASI command entry point. See the crate docs for the accepted forms.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[xxfunc::main] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    match expand(function) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(mut function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &function.sig;
    if sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[xxfunc::main] must be on `fn main`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "`main` cannot be generic",
        ));
    }
    if sig.inputs.len() != 1 {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "`main` takes one argument: `event: xxfunc::Event` or `data: &[u8]`",
        ));
    }
    let raw = match sig.inputs.first() {
        Some(FnArg::Typed(arg)) => is_byte_slice_ref(&arg.ty),
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new(r.span(), "`main` cannot take `self`"));
        }
        None => false,
    };
    let is_async = sig.asyncness.is_some();
    let inner = format_ident!("__xxfunc_user_main");
    function.sig.ident = inner.clone();

    let input = if raw {
        quote! { __xxfunc_input }
    } else {
        quote! { ::xxfunc::__private::decode_event(__xxfunc_input) }
    };
    let call = if is_async {
        quote! { ::xxfunc::__private::block_on(#inner(#input)) }
    } else {
        quote! { #inner(#input) }
    };
    Ok(quote! {
        fn main() {
            #function
            let __xxfunc_input: &'static [u8] = ::xxfunc::__private::start();
            ::xxfunc::__private::finish(#call)
        }

        /// The C entry point wasi-libc's `_start` calls (through `__main_void`) when the
        /// crate is `#![no_main]`, as functions written for the original xxfunc are. Without
        /// `#![no_main]` rustc's own entry (`__main_void`) runs `main` above and this is
        /// never called. (On other targets nothing calls it unless a link argument aliases
        /// `main` to it, as `guest/examples/hello-upstream`'s build script does for the
        /// workspace's native builds.)
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        // Calls `main` above from another function, which is not recursion.
        #[allow(clippy::main_recursion)]
        pub extern "C" fn __main_argc_argv(
            _argc: ::core::ffi::c_int,
            _argv: *mut *mut ::core::ffi::c_char,
        ) -> ::core::ffi::c_int {
            main();
            0
        }
    })
}

fn is_byte_slice_ref(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    let Type::Slice(slice) = reference.elem.as_ref() else {
        return false;
    };
    matches!(slice.elem.as_ref(), Type::Path(p) if p.path.is_ident("u8"))
}
