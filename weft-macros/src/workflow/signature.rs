//! Checks the workflow's signature: `async fn name(ctx: &mut WorkflowContext, ..) -> Result<T, E>`.
//!
//! In: the parsed `ItemFn`. Out: a [`Signature`] with the context name, the parameters and the
//! output and error types, or errors on the offending tokens.

use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::diagnostics::Diagnostics;

/// What the rest of the pipeline needs from the signature.
pub(crate) struct Signature {
    pub(crate) ctx: Ident,
    /// The context type as written, so the user's import of it is used.
    pub(crate) ctx_ty: Type,
    /// `(name, mutable, type)` of each input parameter after the context.
    pub(crate) params: Vec<(Ident, bool, Type)>,
    pub(crate) output: Type,
    pub(crate) error: Type,
}

pub(crate) fn check(item: &ItemFn, diags: &mut Diagnostics) -> Option<Signature> {
    let sig = &item.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        diags.error_spanned(
            sig.fn_token,
            "a workflow must be an `async fn`: the macro compiles its `.await`s into resume points; write `async fn`",
        );
        ok = false;
    }
    if let Some(c) = sig.constness {
        diags.error_spanned(c, "a workflow cannot be a `const fn`: remove `const`");
        ok = false;
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        diags.error_spanned(
            &sig.generics,
            "a workflow cannot be generic: its state is stored and must have one concrete type; use concrete types",
        );
        ok = false;
    }
    if let Some(v) = &sig.variadic {
        diags.error_spanned(v, "a workflow cannot be variadic");
        ok = false;
    }

    let mut inputs = sig.inputs.iter();
    let mut ctx_ty = None;
    let ctx = match inputs.next() {
        Some(FnArg::Typed(pt)) => {
            let ident = match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    Some(pi.ident.clone())
                }
                other => {
                    diags.error_spanned(
                        other,
                        "the workflow context parameter must be a plain name, for example `ctx`",
                    );
                    None
                }
            };
            ctx_ty = Some((*pt.ty).clone());
            if !is_ctx_type(&pt.ty) {
                diags.error_spanned(
                    &pt.ty,
                    "the first parameter of a workflow must be the workflow context: durable operations are called on it; write `ctx: &mut WorkflowContext`",
                );
                ok = false;
            }
            ident
        }
        Some(FnArg::Receiver(r)) => {
            diags.error_spanned(
                r,
                "a workflow cannot take `self`: it is a free function; remove the receiver",
            );
            None
        }
        None => {
            diags.error_spanned(
                &sig.ident,
                "a workflow needs the workflow context as its first parameter: durable operations are called on it; add `ctx: &mut WorkflowContext`",
            );
            None
        }
    };

    let mut params = Vec::new();
    for arg in inputs {
        match arg {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    if let Type::Reference(r) = &*pt.ty {
                        diags.error_spanned(
                            r,
                            "a workflow input cannot be a reference: the input is stored with the workflow; take it by value, for example `String` instead of `&str`",
                        );
                        ok = false;
                    }
                    params.push((pi.ident.clone(), pi.mutability.is_some(), (*pt.ty).clone()));
                }
                other => {
                    diags.error_spanned(
                        other,
                        "a workflow parameter must be a plain name: it is stored in the workflow state by name; bind it to a name and destructure it in the body",
                    );
                    ok = false;
                }
            },
            FnArg::Receiver(r) => {
                diags.error_spanned(
                    r,
                    "a workflow cannot take `self`: it is a free function; remove the receiver",
                );
                ok = false;
            }
        }
    }

    let (output, error) = match &sig.output {
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some(pair) => pair,
            None => {
                diags.error_spanned(
                    ty,
                    "a workflow must return `Result<Output, Error>`: a failed workflow is stored with its error; for example `Result<Receipt, WorkflowError>`",
                );
                return None;
            }
        },
        ReturnType::Default => {
            diags.error_spanned(
                &sig.ident,
                "a workflow must return `Result<Output, Error>`: a failed workflow is stored with its error; add `-> Result<Output, WorkflowError>`",
            );
            return None;
        }
    };
    let ctx = ctx?;
    let ctx_ty = ctx_ty?;
    ok.then_some(Signature {
        ctx,
        ctx_ty,
        params,
        output,
        error,
    })
}

/// The output and error types of a `Result<T, E>` return type (by its last path segment).
pub(crate) fn result_types(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let out = types.next()?;
    let err = types.next()?;
    Some((out, err))
}

fn is_ctx_type(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    if r.mutability.is_none() {
        return false;
    }
    matches!(&*r.elem, Type::Path(tp) if tp.path.segments.last().is_some_and(|s| s.ident == "WorkflowContext"))
}
