//! `#[workflow]`: an `async fn` in; a marker struct, a state enum and a pure step function out.
//!
//! The pipeline, one stage per module: [`signature`] checks the signature; [`scan`] recognises
//! durable operations and rejects every other `.await`; [`lower`] normalises loops and `if let`,
//! hoists awaits out of expressions, resolves names ([`resolve`]) and works out types
//! ([`types`]) into structured nodes ([`ir`]); [`liveness`] finds what each await must save and
//! asks for the types it cannot tell, in the form [`hint`] fits to where each binding stands;
//! [`codegen`] writes the expansion, with [`interface`] for what it accepts by name. Errors of
//! all stages are collected and reported together.

mod codegen;
mod hint;
mod interface;
mod ir;
mod liveness;
mod lower;
mod resolve;
mod scan;
mod signature;
mod types;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::diagnostics::Diagnostics;

/// Arguments of `#[workflow(...)]`.
struct Args {
    name: Option<String>,
    version: u32,
}

fn parse_args(attr: TokenStream, diags: &mut Diagnostics) -> Args {
    let mut args = Args {
        name: None,
        version: 1,
    };
    if attr.is_empty() {
        return args;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let lit: syn::LitStr = meta.value()?.parse()?;
            if lit.value().is_empty() {
                return Err(meta.error("the workflow name cannot be empty"));
            }
            args.name = Some(lit.value());
            Ok(())
        } else if meta.path.is_ident("version") {
            let lit: syn::LitInt = meta.value()?.parse()?;
            args.version = lit.base10_parse()?;
            if args.version == 0 {
                return Err(syn::Error::new(lit.span(), "workflow versions start at 1"));
            }
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[workflow]` argument: expected `name = \"...\"` or `version = N`",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        diags.push(e);
    }
    args
}

/// Expands `#[workflow]`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            let mut err = e.to_compile_error();
            err.extend(item);
            return err;
        }
    };
    let mut diags = Diagnostics::new();
    let args = parse_args(attr, &mut diags);
    let Some(sig) = signature::check(&item, &mut diags) else {
        return fallback(&item, None, diags);
    };
    let lowered = lower::lower(&sig.ctx, &sig.params, &item.block, &mut diags);
    let saved = liveness::analyse(&lowered);
    liveness::check_types(&lowered, &saved, &mut diags);
    if diags.has_errors() {
        return fallback(&item, Some(&sig), diags);
    }
    let name = args.name.unwrap_or_else(|| item.sig.ident.to_string());
    let generator = codegen::Generator::new(&item, &sig, &lowered, &saved, name, args.version);
    let marker = codegen::Generator::marker(&item);
    let state = generator.state_enum();
    let imp = generator.workflow_impl();
    quote! {
        #marker
        #state
        const _: () = {
            #imp
        };
    }
}

/// What is emitted when the workflow has errors: the errors, the marker struct, and (when the
/// signature is sound) a `Workflow` impl that cannot run, so uses of the workflow elsewhere do
/// not fail with unrelated errors.
fn fallback(item: &ItemFn, sig: Option<&signature::Signature>, diags: Diagnostics) -> TokenStream {
    let errors = diags.into_compile_errors();
    let marker = codegen::marker_struct(item);
    let Some(sig) = sig else {
        return quote!(#errors #marker);
    };
    let ident = &item.sig.ident;
    let name = ident.to_string();
    let output = &sig.output;
    let error = &sig.error;
    let params: Vec<&syn::Type> = sig.params.iter().map(|(_, _, t)| t).collect();
    let input = match params.len() {
        1 => quote!(#(#params)*),
        _ => quote!((#(#params,)*)),
    };
    quote! {
        #errors
        #marker
        const _: () = {
            impl ::weft_runtime::__private::Workflow for #ident {
                type Input = #input;
                type Output = #output;
                type Error = #error;
                type State = ();
                const NAME: &'static str = #name;
                const FINGERPRINT: u64 = 0;
                fn start(_: Self::Input) {}
                fn step(
                    _: &mut ::weft_runtime::__private::WorkflowContext,
                    _: (),
                    _: ::weft_runtime::__private::Resume,
                ) -> ::core::result::Result<::weft_runtime::__private::Transition<Self>, ::weft_runtime::__private::StepError> {
                    ::core::unreachable!("this workflow did not compile")
                }
                fn state_name(_: &()) -> &'static str {
                    "Invalid"
                }
                fn activities(_: &mut ::weft_runtime::__private::ActivitySet) {}
            }
        };
    }
}
#[cfg(test)]
mod tests;
