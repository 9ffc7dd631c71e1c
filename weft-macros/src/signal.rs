//! `#[derive(Signal)]`: a type in, its `Signal` impl with a stable name out.
//!
//! The name is the type's name unless `#[signal(name = "...")]` pins it. The impl also gives the
//! type's JSON Schema when it has one (see `weft_runtime::interface`). Generic types are
//! rejected: every instantiation would share one name, so a workflow waiting for
//! `Envelope<u32>` could be handed an `Envelope<String>` and fail to decode it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{DeriveInput, Expr, Lit, LitStr};

use crate::diagnostics::Diagnostics;

/// Expands `#[derive(Signal)]`.
pub(crate) fn expand(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(item) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut diagnostics = Diagnostics::new();
    let name = parse_name(&input, &mut diagnostics);
    let generic = check_generics(&input, &mut diagnostics);
    let errors = diagnostics.into_compile_errors();
    if generic {
        // An impl for a generic type would need bounds and a name per instantiation; emitting
        // none is clearer than a second, derived error.
        return errors;
    }
    // Also emitted when only the attribute is wrong, with the default name, so uses of the type
    // as a signal do not report "is not a signal" on top of the attribute error.
    let ident = &input.ident;
    let name = name.unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));
    quote! {
        const _: () = {
            #[allow(deprecated, unused_qualifications)]
            #[automatically_derived]
            impl ::weft_runtime::__private::Signal for #ident {
                const NAME: &'static str = #name;
                fn json_schema() -> ::core::option::Option<::weft_runtime::__private::SchemaFn> {
                    #[allow(unused_imports)]
                    use ::weft_runtime::__private::{ViaJsonSchema as _, WithoutJsonSchema as _};
                    (&::weft_runtime::__private::SchemaProbe::<Self>::new()).schema_fn()
                }
            }
        };
        #errors
    }
}

/// The name from `#[signal(name = "...")]`, recording every malformed `#[signal]` attribute.
fn parse_name(input: &DeriveInput, diagnostics: &mut Diagnostics) -> Option<LitStr> {
    const USAGE: &str = "write `#[signal(name = \"order.approved\")]`";
    let mut name: Option<LitStr> = None;
    let mut seen_name = false;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("signal"))
    {
        if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = &attr.meta {
            diagnostics.error_spanned(
                &attr.meta,
                format_args!("`#[signal]` takes its arguments in parentheses; {USAGE}"),
            );
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            if key != "name" {
                diagnostics.error_spanned(
                    &meta.path,
                    format_args!(
                        "unknown `#[signal]` argument `{key}`; the only argument is `name`, as in \
                         `#[signal(name = \"order.approved\")]`"
                    ),
                );
                // Skip its value so the arguments after it are still checked.
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _: proc_macro2::Group = meta.input.parse()?;
                }
                return Ok(());
            }
            if !meta.input.peek(syn::Token![=]) {
                diagnostics.error_spanned(&meta.path, format_args!("`name` needs a value; {USAGE}"));
                return Ok(());
            }
            let value: Expr = meta.value()?.parse()?;
            if seen_name {
                diagnostics.error_spanned(&meta.path, "`name` is given twice; keep one of them");
                return Ok(());
            }
            seen_name = true;
            match value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(lit), ..
                }) if lit.value().trim().is_empty() => diagnostics.error_spanned(
                    &lit,
                    "the signal name is empty; give a stable name such as `name = \"order.approved\"`",
                ),
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(lit), ..
                }) => name = Some(lit),
                other => diagnostics.error_spanned(
                    &other,
                    format_args!("`name` expects a string literal; {USAGE}"),
                ),
            }
            Ok(())
        });
        if let Err(error) = result {
            diagnostics.push(error);
        }
    }
    name
}

/// Records an error for generic parameters; returns whether there were any.
fn check_generics(input: &DeriveInput, diagnostics: &mut Diagnostics) -> bool {
    let generics = &input.generics;
    if generics.params.is_empty() {
        return false;
    }
    if generics
        .params
        .iter()
        .all(|param| matches!(param, syn::GenericParam::Lifetime(_)))
    {
        diagnostics.error_spanned(
            generics,
            "a signal type cannot borrow: signals are decoded into owned values; remove the \
             lifetime and own the data, as in `String` instead of `&'a str`",
        );
    } else {
        diagnostics.error_spanned(
            generics,
            format_args!(
                "a signal type cannot be generic: every instantiation would share the signal \
                 name `{}`, so a workflow could be handed a signal of another type; define one \
                 concrete type per signal",
                input.ident.unraw()
            ),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    #[test]
    fn default_name() {
        insta::assert_snapshot!(crate::pretty(expand(quote! {
            #[derive(Serialize, Deserialize)]
            pub struct Approved {
                by: String,
            }
        })));
    }

    #[test]
    fn renamed() {
        insta::assert_snapshot!(crate::pretty(expand(quote! {
            #[derive(Serialize, Deserialize)]
            #[signal(name = "order.approved")]
            pub enum Decision {
                Approve,
                Reject { reason: String },
            }
        })));
    }

    #[test]
    fn generic_type_is_rejected_without_an_impl() {
        insta::assert_snapshot!(crate::pretty(expand(quote! {
            pub struct Envelope<T> {
                body: T,
            }
        })));
    }

    #[test]
    fn bad_attributes_are_reported_together_and_the_impl_is_kept() {
        insta::assert_snapshot!(crate::pretty(expand(quote! {
            #[signal(nmae = "x", name = 5)]
            #[signal = "y"]
            pub struct Approved;
        })));
    }
}
