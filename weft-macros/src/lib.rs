//! Procedural macros for Weft. Use them through `weft_runtime`, which re-exports them.
//!
//! Each entry point is a thin wrapper over an expander written against `proc_macro2`, so the
//! expanders can be unit-tested and their output snapshot-tested.

mod activity;
mod diagnostics;
mod signal;
mod workflow;

use proc_macro::TokenStream;

/// Compiles an `async fn` into a durable workflow: a persisted enum state machine.
///
/// See the `weft_runtime` crate docs for the full guide; this attribute is re-exported there.
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(attr.into(), item.into()).into()
}

/// Turns an `async fn` into a typed activity that workflows run with `ctx.run`.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(attr.into(), item.into()).into()
}

/// Gives a message type a stable name, so workflows can wait for it with `ctx.wait_for_signal`.
#[proc_macro_derive(Signal, attributes(signal))]
pub fn derive_signal(item: TokenStream) -> TokenStream {
    signal::expand(item.into()).into()
}

/// Expands a macro on a string of source, for snapshot tests: returns formatted code.
#[cfg(test)]
pub(crate) fn pretty(tokens: proc_macro2::TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}
