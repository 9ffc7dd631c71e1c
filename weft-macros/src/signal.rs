//! `#[derive(Signal)]`: a type in, its `Signal` impl with a stable name out.
use proc_macro2::TokenStream;
pub(crate) fn expand(_item: TokenStream) -> TokenStream { TokenStream::new() }
