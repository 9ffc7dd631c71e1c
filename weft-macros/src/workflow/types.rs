//! Works out the type of each binding the state may have to hold, from what is written.
//!
//! A proc macro sees no types, so a type is known only from a `let` annotation, a parameter, an
//! activity's output, a signal's type, a move or clone of a known variable, a literal with a
//! suffix, a cast, a struct literal, or a few well-known constructors. Everything else must be
//! annotated by the user, and the liveness stage asks for that only where it matters.
//!
//! In: an expression or pattern and the known types. Out: [`TypeInfo`]s.

use proc_macro2::Span;
use syn::{Expr, GenericArgument, Lit, Pat, PathArguments, Type, parse_quote};

use super::ir::{Op, TypeInfo};

/// The type of a durable await's result, with `?` applied or not.
pub(crate) fn await_type(op: &Op, try_: bool) -> TypeInfo {
    match op {
        Op::Run { activity, .. } => {
            let output: Type = parse_quote!(<#activity as ::weft_runtime::Activity>::Output);
            if try_ {
                TypeInfo::Known(output)
            } else {
                TypeInfo::Known(parse_quote!(
                    ::core::result::Result<#output, ::weft_runtime::ActivityError>
                ))
            }
        }
        Op::Sleep { .. } => TypeInfo::Known(parse_quote!(())),
        Op::Signal { ty } => TypeInfo::Known((**ty).clone()),
        Op::Update { ty } => TypeInfo::Known(parse_quote!((#ty, ::weft_runtime::UpdateReply<#ty>))),
        Op::Review { .. } => TypeInfo::Known(parse_quote!(::weft_runtime::ReviewOutcome)),
        Op::Child { workflow, .. } => {
            let output: Type = parse_quote!(<#workflow as ::weft_runtime::Workflow>::Output);
            if try_ {
                TypeInfo::Known(output)
            } else {
                TypeInfo::Known(parse_quote!(
                    ::core::result::Result<#output, ::weft_runtime::ChildError>
                ))
            }
        }
        Op::Compensate { .. } => {
            if try_ {
                TypeInfo::Known(parse_quote!(()))
            } else {
                TypeInfo::Known(parse_quote!(
                    ::core::result::Result<(), ::weft_runtime::ActivityError>
                ))
            }
        }
        Op::All { group } | Op::Race { group } => {
            let TypeInfo::Known(ty) = group_type(op, group) else {
                return TypeInfo::Unknown;
            };
            if try_ {
                // `?` on a group value is the user's own business: the type stays unknown.
                TypeInfo::Unknown
            } else {
                TypeInfo::Known(ty)
            }
        }
    }
}

/// The value of `ctx.all`/`ctx.race` over a tuple of durable calls: known when every branch's
/// type is. A `Vec` group's type is known only from an annotation.
fn group_type(op: &Op, group: &Expr) -> TypeInfo {
    let Expr::Tuple(tuple) = strip(group) else {
        return TypeInfo::Unknown;
    };
    let mut branches = Vec::new();
    for elem in &tuple.elems {
        let mut sink = crate::diagnostics::Diagnostics::new();
        let Some(branch) = super::scan::parse_op(elem, &mut sink) else {
            return TypeInfo::Unknown;
        };
        match await_type(&branch, false) {
            TypeInfo::Known(t) => branches.push(t),
            _ => return TypeInfo::Unknown,
        }
    }
    match (op, branches.len()) {
        (Op::All { .. }, _) => TypeInfo::Known(parse_quote!((#(#branches,)*))),
        (Op::Race { .. }, n @ 2..=4) => {
            let name = syn::Ident::new(&format!("Race{n}"), Span::call_site());
            TypeInfo::Known(parse_quote!(::weft_runtime::#name<#(#branches),*>))
        }
        _ => TypeInfo::Unknown,
    }
}

fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        other => other,
    }
}

/// Whether a written type holds a reference anywhere.
pub(crate) fn contains_reference(ty: &Type) -> Option<Span> {
    match ty {
        Type::Reference(r) => Some(r.and_token.span),
        Type::Ptr(p) => Some(p.star_token.span),
        Type::Slice(s) => contains_reference(&s.elem),
        Type::Array(a) => contains_reference(&a.elem),
        Type::Tuple(t) => t.elems.iter().find_map(contains_reference),
        Type::Paren(p) => contains_reference(&p.elem),
        Type::Group(g) => contains_reference(&g.elem),
        Type::Path(p) => p.path.segments.iter().find_map(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => contains_reference(t),
                GenericArgument::Lifetime(l) => Some(l.span()),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

/// A written type, as a [`TypeInfo`] (a reference type is a borrow).
pub(crate) fn from_annotation(ty: &Type) -> TypeInfo {
    match contains_reference(ty) {
        Some(span) => TypeInfo::Borrow(span),
        None => TypeInfo::Known(ty.clone()),
    }
}

/// Infers an expression's type. `var` looks up a variable's type by name.
pub(crate) fn infer(expr: &Expr, var: &dyn Fn(&str) -> Option<TypeInfo>) -> TypeInfo {
    use TypeInfo::*;
    match expr {
        Expr::Path(p) if p.qself.is_none() => match p.path.get_ident() {
            Some(ident) => var(&ident.to_string()).unwrap_or(Unknown),
            None => Unknown,
        },
        Expr::Paren(p) => infer(&p.expr, var),
        Expr::Group(g) => infer(&g.expr, var),
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) if !i.suffix().is_empty() => known(i.suffix()),
            Lit::Float(f) if !f.suffix().is_empty() => known(f.suffix()),
            Lit::Bool(_) => Known(parse_quote!(bool)),
            Lit::Char(_) => Known(parse_quote!(char)),
            Lit::Str(s) => Borrow(s.span()),
            Lit::ByteStr(s) => Borrow(s.span()),
            _ => Unknown,
        },
        Expr::Reference(r) => Borrow(r.and_token.span),
        Expr::Cast(c) => from_annotation(&c.ty),
        Expr::Struct(s) if s.qself.is_none() && s.path.segments.len() == 1 => {
            let path = &s.path;
            Known(parse_quote!(#path))
        }
        Expr::Tuple(t) => {
            let mut elems = Vec::new();
            for e in &t.elems {
                match infer(e, var) {
                    Known(ty) => elems.push(ty),
                    other => return other,
                }
            }
            Known(parse_quote!((#(#elems,)*)))
        }
        Expr::Unary(u) => match u.op {
            syn::UnOp::Not(_) | syn::UnOp::Neg(_) => infer(&u.expr, var),
            _ => Unknown,
        },
        Expr::Binary(b) => {
            use syn::BinOp::*;
            match b.op {
                Eq(_) | Lt(_) | Le(_) | Ne(_) | Ge(_) | Gt(_) | And(_) | Or(_) => {
                    Known(parse_quote!(bool))
                }
                Add(_) | Sub(_) | Mul(_) | Div(_) | Rem(_) | BitXor(_) | BitAnd(_) | BitOr(_) => {
                    match (infer(&b.left, var), infer(&b.right, var)) {
                        (Known(l), _) if is_primitive_number(&l) => Known(l),
                        (_, Known(r)) if is_primitive_number(&r) => Known(r),
                        _ => Unknown,
                    }
                }
                _ => Unknown,
            }
        }
        Expr::Try(t) => match infer(&t.expr, var) {
            Known(ty) => first_generic_of(&ty, &["Result", "Option"]).map_or(Unknown, Known),
            other => other,
        },
        Expr::MethodCall(mc) => {
            let method = mc.method.to_string();
            match method.as_str() {
                "clone" | "to_owned" if mc.args.is_empty() => match infer(&mc.receiver, var) {
                    Known(ty) => Known(ty),
                    // `"text".to_owned()` and `s.to_owned()` of a `&str` give a `String`.
                    Borrow(_) if is_str_literal(&mc.receiver) => Known(parse_quote!(String)),
                    _ => Unknown,
                },
                "to_string" if mc.args.is_empty() => Known(parse_quote!(String)),
                "len" | "count" if mc.args.is_empty() => Known(parse_quote!(usize)),
                "is_empty" | "is_some" | "is_none" | "is_ok" | "is_err" | "contains"
                | "starts_with" | "ends_with" => Known(parse_quote!(bool)),
                "iter" | "iter_mut" | "as_str" | "as_ref" | "as_slice" | "as_mut" => {
                    Borrow(mc.method.span())
                }
                _ => Unknown,
            }
        }
        Expr::Call(call) => match &*call.func {
            Expr::Path(p) if p.qself.is_none() => {
                let segs: Vec<String> = p
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                match segs
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    ["String", "from" | "new" | "with_capacity"] => Known(parse_quote!(String)),
                    _ => Unknown,
                }
            }
            _ => Unknown,
        },
        Expr::Macro(m) if m.mac.path.is_ident("format") => Known(parse_quote!(String)),
        _ => Unknown,
    }
}

fn is_str_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Lit(l) if matches!(l.lit, Lit::Str(_)))
}

fn known(name: &str) -> TypeInfo {
    let ident = syn::Ident::new(name, Span::call_site());
    TypeInfo::Known(parse_quote!(#ident))
}

fn is_primitive_number(ty: &Type) -> bool {
    const NUMBERS: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64",
    ];
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.get_ident().is_some_and(|i| NUMBERS.iter().any(|n| i == n)))
}

/// The `n`th type argument of `Result`/`Option`-like types, by the last path segment.
fn generic_of(ty: &Type, names: &[&str], n: usize) -> Option<Type> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if !names.iter().any(|name| last.ident == name) {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
        .nth(n)
}

fn first_generic_of(ty: &Type, names: &[&str]) -> Option<Type> {
    generic_of(ty, names, 0)
}

/// The types of the bindings of `pat` when it matches a value of type `ty`: `(name, type)`.
pub(crate) fn bind_pattern(pat: &Pat, ty: TypeInfo, out: &mut Vec<(String, TypeInfo)>) {
    use TypeInfo::*;
    match pat {
        Pat::Ident(pi) => {
            let ty = if pi.by_ref.is_some() {
                Borrow(pi.ident.span())
            } else {
                ty.clone()
            };
            out.push((pi.ident.to_string(), ty.clone()));
            if let Some((_, sub)) = &pi.subpat {
                bind_pattern(sub, ty, out);
            }
        }
        Pat::Type(pt) => bind_pattern(&pt.pat, from_annotation(&pt.ty), out),
        Pat::Paren(p) => bind_pattern(&p.pat, ty, out),
        Pat::Guard(g) => bind_pattern(&g.pat, ty, out),
        Pat::Reference(r) => bind_pattern(&r.pat, Borrow(r.and_token.span), out),
        Pat::Tuple(t) => {
            let elems: Option<Vec<Type>> = match &ty {
                Known(Type::Tuple(tt)) if tt.elems.len() == t.elems.len() => {
                    Some(tt.elems.iter().cloned().collect())
                }
                _ => None,
            };
            for (i, p) in t.elems.iter().enumerate() {
                let elem_ty = match (&elems, &ty) {
                    (Some(e), _) => Known(e[i].clone()),
                    (None, Borrow(s)) => Borrow(*s),
                    _ => Unknown,
                };
                bind_pattern(p, elem_ty, out);
            }
        }
        Pat::TupleStruct(ts) if ts.qself.is_none() && ts.elems.len() == 1 => {
            let variant = ts.path.segments.last().map(|s| s.ident.to_string());
            let inner = match (&ty, variant.as_deref()) {
                (Known(t), Some("Ok")) => generic_of(t, &["Result"], 0).map_or(Unknown, Known),
                (Known(t), Some("Err")) => generic_of(t, &["Result"], 1).map_or(Unknown, Known),
                (Known(t), Some("Some")) => generic_of(t, &["Option"], 0).map_or(Unknown, Known),
                (Borrow(s), _) => Borrow(*s),
                _ => Unknown,
            };
            bind_pattern(&ts.elems[0], inner, out);
        }
        Pat::Or(po) => {
            if let Some(first) = po.cases.first() {
                bind_pattern(first, ty, out);
            }
        }
        other => {
            // Struct, slice and multi-field patterns: bindings are there but their types are not
            // known without annotations.
            let mut names = Vec::new();
            for (ident, by_ref, _) in super::resolve::pattern_bindings(other) {
                names.push((
                    ident.to_string(),
                    if by_ref || matches!(ty, Borrow(_)) {
                        Borrow(ident.span())
                    } else {
                        Unknown
                    },
                ));
            }
            out.extend(names);
        }
    }
}

/// For a `for` loop that suspends: the saved iterator type and the item type, if known.
pub(crate) fn iteration_types(
    iterable: &Expr,
    var: &dyn Fn(&str) -> Option<TypeInfo>,
) -> Result<(Type, Type), &'static str> {
    match iterable {
        Expr::Paren(p) => iteration_types(&p.expr, var),
        Expr::Range(r) => {
            let bounds = [r.start.as_deref(), r.end.as_deref()];
            if bounds.iter().any(Option::is_none) {
                return Err("range");
            }
            let item = bounds.iter().flatten().find_map(|b| match infer(b, var) {
                TypeInfo::Known(t) if is_primitive_number(&t) => Some(t),
                _ => None,
            });
            match item {
                Some(item) => Ok((
                    parse_quote!(::weft_runtime::__private::DurableRange<#item>),
                    item,
                )),
                None => Err("range"),
            }
        }
        other => match infer(other, var) {
            TypeInfo::Known(ty) => match first_generic_of(&ty, &["Vec", "VecDeque"]) {
                Some(item) => Ok((
                    parse_quote!(::weft_runtime::__private::VecDeque<#item>),
                    item,
                )),
                None => Err("collection"),
            },
            TypeInfo::Borrow(_) => Err("borrow"),
            TypeInfo::Unknown => Err("unknown"),
        },
    }
}
