//! `#[activity]`: an `async fn` in, a unit struct implementing `Activity` out.
use proc_macro2::TokenStream;
pub(crate) fn expand(_attr: TokenStream, item: TokenStream) -> TokenStream { item }
