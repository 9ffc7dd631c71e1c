//! `#[derive(Update)]`: a request type in, its `Update` impl (response type, stable name, queue
//! name, and the JSON Schemas of request and response where they have one) out.
//!
//! `#[update(response = T)]` is required; `name = "..."` pins the name, which defaults to the
//! type's name. Generic types are rejected for the reason given in `signal.rs`.
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{DeriveInput, Expr, Lit, LitStr, Type};

use crate::diagnostics::Diagnostics;

const USAGE: &str = "write `#[update(response = Receipt)]` or `#[update(response = Receipt, name = \"order.amend\")]`";

/// Expands `#[derive(Update)]`.
pub(crate) fn expand(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(item) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut diagnostics = Diagnostics::new();
    let (name, response) = parse_args(&input, &mut diagnostics);
    if !input.generics.params.is_empty() {
        diagnostics.error_spanned(
            &input.generics,
            "an update type cannot be generic or borrow: every instantiation would share one \
             update name; define one concrete, owned type per update",
        );
        return diagnostics.into_compile_errors();
    }
    let ident = &input.ident;
    let Some(response) = response else {
        diagnostics.error_spanned(
            ident,
            format_args!("`#[derive(Update)]` needs the response type; {USAGE}"),
        );
        return diagnostics.into_compile_errors();
    };
    let errors = diagnostics.into_compile_errors();
    let name = name.unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));
    let queue = LitStr::new(&format!("weft.update/{}", name.value()), name.span());
    quote! {
        const _: () = {
            #[allow(deprecated, unused_qualifications)]
            #[automatically_derived]
            impl ::weft_runtime::__private::Update for #ident {
                type Response = #response;
                const NAME: &'static str = #name;
                const QUEUE: &'static str = #queue;
                fn request_schema() -> ::core::option::Option<::weft_runtime::__private::SchemaFn> {
                    #[allow(unused_imports)]
                    use ::weft_runtime::__private::{ViaJsonSchema as _, WithoutJsonSchema as _};
                    (&::weft_runtime::__private::SchemaProbe::<Self>::new()).schema_fn()
                }
                fn response_schema() -> ::core::option::Option<::weft_runtime::__private::SchemaFn> {
                    #[allow(unused_imports)]
                    use ::weft_runtime::__private::{ViaJsonSchema as _, WithoutJsonSchema as _};
                    (&::weft_runtime::__private::SchemaProbe::<#response>::new()).schema_fn()
                }
            }
        };
        #errors
    }
}

/// The `name` and `response` of `#[update(..)]`, recording every malformed argument.
fn parse_args(
    input: &DeriveInput,
    diagnostics: &mut Diagnostics,
) -> (Option<LitStr>, Option<Type>) {
    let mut name: Option<LitStr> = None;
    let mut response: Option<Type> = None;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("update"))
    {
        if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = &attr.meta {
            diagnostics.error_spanned(
                &attr.meta,
                format_args!("`#[update]` takes its arguments in parentheses; {USAGE}"),
            );
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            match key.as_str() {
                "response" => {
                    let ty: Type = meta.value()?.parse()?;
                    if response.replace(ty).is_some() {
                        diagnostics.error_spanned(
                            &meta.path,
                            "`response` is given twice; keep one of them",
                        );
                    }
                }
                "name" => match meta.value()?.parse::<Expr>()? {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(lit), ..
                    }) if !lit.value().trim().is_empty() => {
                        if name.replace(lit).is_some() {
                            diagnostics.error_spanned(
                                &meta.path,
                                "`name` is given twice; keep one of them",
                            );
                        }
                    }
                    other => diagnostics.error_spanned(
                        &other,
                        format_args!("`name` expects a non-empty string literal; {USAGE}"),
                    ),
                },
                _ => {
                    diagnostics.error_spanned(
                        &meta.path,
                        format_args!("unknown `#[update]` argument `{key}`; {USAGE}"),
                    );
                    if meta.input.peek(syn::Token![=]) {
                        let _: Expr = meta.value()?.parse()?;
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            diagnostics.push(error);
        }
    }
    (name, response)
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    #[test]
    fn update_with_response_and_name() {
        insta::assert_snapshot!(crate::pretty(expand(quote! {
            #[derive(Serialize, Deserialize)]
            #[update(response = Receipt, name = "order.amend")]
            pub struct Amend {
                quantity: u32,
            }
        })));
    }
}
