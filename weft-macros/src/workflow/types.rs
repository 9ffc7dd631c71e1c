//! Works out the type of each binding the state may have to hold, from what is written.
//!
//! A proc macro sees no types, so a type is known only from a `let` annotation, a parameter, an
//! activity's output, a signal's type, a group's branches, a move or clone of a known variable,
//! a literal with a suffix, a cast, a struct literal or enum variant, a constructor of a type the
//! path names (`Saga::new()`), `vec![..]` or an array of a known element, or an item taken out of
//! a known collection (`queue.pop_front()`). Everything else must be annotated by the user, and
//! the liveness stage asks for that only where it matters. A wrong guess is never silent: the
//! state names the guessed type, so a value of another type is a compile error.
//!
//! In: an expression or pattern and the known types. Out: [`TypeInfo`]s.

use proc_macro2::Span;
use syn::{Expr, GenericArgument, Ident, Lit, Pat, PathArguments, Type, parse_quote};

use super::ir::{Op, TypeInfo};

/// The type of a durable await's result, with `?` applied or not.
pub(crate) fn await_type(op: &Op, try_: bool, ctx: &Ident) -> TypeInfo {
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
            let TypeInfo::Known(ty) = group_type(op, group, ctx) else {
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

/// The value of `ctx.all`/`ctx.race`: known when every branch's type is. A tuple's branches are
/// its elements; any other group is a `Vec` of operations of one type, written as one durable
/// call (in a closure, or several of the same type): its branch type is that call's. The
/// suspension names the same type (`command::<T>`), so a wrong guess is a compile error, never a
/// value decoded as the wrong type.
fn group_type(op: &Op, group: &Expr, ctx: &Ident) -> TypeInfo {
    let one = |call: &Expr| {
        let mut sink = crate::diagnostics::Diagnostics::new();
        super::scan::parse_op(call, &mut sink).map(|branch| await_type(&branch, false, ctx))
    };
    let Expr::Tuple(tuple) = strip(group) else {
        if !builds_vec(strip(group)) {
            return TypeInfo::Unknown;
        }
        let branch = super::scan::durable_calls(group, ctx)
            .into_iter()
            .find_map(|call| match one(call) {
                Some(TypeInfo::Known(t)) => Some(t),
                _ => None,
            });
        return match (op, branch) {
            (Op::All { .. }, Some(t)) => TypeInfo::Known(parse_quote!(::std::vec::Vec<#t>)),
            (Op::Race { .. }, Some(t)) => TypeInfo::Known(parse_quote!((usize, #t))),
            _ => TypeInfo::Unknown,
        };
    };
    let mut branches = Vec::new();
    for elem in &tuple.elems {
        match one(elem) {
            Some(TypeInfo::Known(t)) => branches.push(t),
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

/// Whether a group expression evidently builds a `Vec`: `.collect()` (to a `Vec`, if it says),
/// `Vec::from(..)` or `Vec::from_iter(..)`. Anything else keeps its type unknown.
fn builds_vec(expr: &Expr) -> bool {
    match expr {
        Expr::MethodCall(mc) if mc.method == "collect" && mc.args.is_empty() => {
            match &mc.turbofish {
                None => true,
                Some(tf) => matches!(
                    tf.args.first(),
                    Some(GenericArgument::Type(t)) if is_sequence(t, &["Vec"])
                ),
            }
        }
        Expr::Call(call) => matches!(&*call.func, Expr::Path(p)
            if p.qself.is_none()
                && p.path.segments.len() >= 2
                && p.path.segments[p.path.segments.len() - 2].ident == "Vec"
                && p.path.segments.last().is_some_and(|s| s.ident == "from" || s.ident == "from_iter")),
        _ => false,
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

/// Whether a written type leaves a part to inference (`_`), which the state cannot name.
fn contains_placeholder(ty: &Type) -> bool {
    match ty {
        Type::Infer(_) => true,
        Type::Slice(s) => contains_placeholder(&s.elem),
        Type::Array(a) => contains_placeholder(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_placeholder),
        Type::Paren(p) => contains_placeholder(&p.elem),
        Type::Group(g) => contains_placeholder(&g.elem),
        Type::Path(p) => p.path.segments.iter().any(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().any(|a| match a {
                GenericArgument::Type(t) => contains_placeholder(t),
                _ => false,
            }),
            _ => false,
        }),
        _ => false,
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
            // `Status::Pending`: a unit variant names its enum.
            None => variant_owner(&p.path).map_or(Unknown, Known),
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
        Expr::Struct(s) if s.qself.is_none() => struct_type(&s.path).map_or(Unknown, Known),
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
        Expr::Array(a) => {
            let elems: Vec<&Expr> = a.elems.iter().collect();
            let len = elems.len();
            match element_type(&elems, var) {
                Known(t) => Known(parse_quote!([#t; #len])),
                other => other,
            }
        }
        Expr::Repeat(r) => match (infer(&r.expr, var), &*r.len) {
            (
                Known(t),
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Int(n), ..
                }),
            ) => Known(parse_quote!([#t; #n])),
            (Borrow(s), _) => Borrow(s),
            _ => Unknown,
        },
        // `v[i]` of a known sequence (not a range of it, which is a slice).
        Expr::Index(i) if !matches!(*i.index, Expr::Range(_)) => match infer(&i.expr, var) {
            Known(t) => element_of(&t).map_or(Unknown, Known),
            _ => Unknown,
        },
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
        Expr::MethodCall(mc) => infer_method(mc, var),
        Expr::Call(call) => infer_call(call, var),
        Expr::Macro(m) if m.mac.path.is_ident("format") => Known(parse_quote!(String)),
        Expr::Macro(m) if m.mac.path.is_ident("vec") => match vec_elements(&m.mac.tokens) {
            Some(elems) => match element_type(&elems.iter().collect::<Vec<_>>(), var) {
                Known(t) => Known(parse_quote!(::std::vec::Vec<#t>)),
                other => other,
            },
            None => Unknown,
        },
        _ => Unknown,
    }
}

/// The type of a method call's value, for the methods whose result follows from the receiver's.
fn infer_method(mc: &syn::ExprMethodCall, var: &dyn Fn(&str) -> Option<TypeInfo>) -> TypeInfo {
    use TypeInfo::*;
    let method = mc.method.to_string();
    let receiver = || infer(&mc.receiver, var);
    let elem = || match receiver() {
        Known(t) => element_of(&t),
        _ => None,
    };
    let some = |t: Option<Type>| t.map_or(Unknown, |t| Known(option(&t)));
    match (method.as_str(), mc.args.len()) {
        ("clone" | "to_owned", 0) => match receiver() {
            Known(ty) => Known(ty),
            // `"text".to_owned()` and `s.to_owned()` of a `&str` give a `String`.
            Borrow(_) if is_str_literal(&mc.receiver) => Known(parse_quote!(String)),
            _ => Unknown,
        },
        ("to_string", 0) => Known(parse_quote!(String)),
        ("len" | "count", 0) => Known(parse_quote!(usize)),
        (
            "is_empty" | "is_some" | "is_none" | "is_ok" | "is_err" | "contains" | "starts_with"
            | "ends_with",
            _,
        ) => Known(parse_quote!(bool)),
        // The next compensation of a saga: `saga.pop()`.
        ("pop", 0) if matches!(receiver(), Known(t) if is_sequence(&t, &["Saga"])) => {
            Known(option(&parse_quote!(::weft_runtime::Compensation)))
        }
        // Taking an item out of a known collection: `queue.pop_front()`.
        ("pop" | "pop_front" | "pop_back", 0) => some(elem()),
        ("remove", 1) => match receiver() {
            Known(t) if is_sequence(&t, &["Vec"]) => elem().map_or(Unknown, Known),
            Known(t) if is_sequence(&t, &["VecDeque"]) => some(elem()),
            _ => Unknown,
        },
        ("swap_remove", 1) => match receiver() {
            Known(t) if is_sequence(&t, &["Vec"]) => elem().map_or(Unknown, Known),
            _ => Unknown,
        },
        ("unwrap" | "unwrap_or_default", 0) | ("expect" | "unwrap_or" | "unwrap_or_else", 1) => {
            match receiver() {
                Known(t) => first_generic_of(&t, &["Option", "Result"]).map_or(Unknown, Known),
                _ => Unknown,
            }
        }
        // An owning iterator's next item: `docs.into_iter().next()`.
        ("next" | "last", 0) | ("nth", 1) if owned_items(&mc.receiver, var).is_some() => {
            some(owned_items(&mc.receiver, var))
        }
        // An item of an iterator over references borrows: `docs.iter().next()`.
        ("next" | "last", 0) | ("nth", 1) if iterated_by_ref(&mc.receiver, var).is_some() => {
            Borrow(mc.method.span())
        }
        // A copy of a borrowed item: `docs.first().cloned()`, `docs.iter().next().cloned()`.
        ("cloned" | "copied", 0) if borrowed_item(&mc.receiver, var).is_some() => {
            some(borrowed_item(&mc.receiver, var))
        }
        ("iter" | "iter_mut" | "as_str" | "as_ref" | "as_slice" | "as_mut", 0)
        | ("first" | "last" | "front" | "back" | "peek", 0)
        | ("get", 1) => Borrow(mc.method.span()),
        _ => Unknown,
    }
}

/// `Option<t>`, spelled so no user name can shadow it.
fn option(t: &Type) -> Type {
    parse_quote!(::core::option::Option<#t>)
}

/// The item type of an iterator that owns its items: `x.into_iter()`, `x.drain(..)`,
/// `x.iter().cloned()`, over a known sequence.
fn owned_items(expr: &Expr, var: &dyn Fn(&str) -> Option<TypeInfo>) -> Option<Type> {
    let Expr::MethodCall(mc) = strip(expr) else {
        return None;
    };
    match (mc.method.to_string().as_str(), mc.args.len()) {
        ("into_iter", 0) | ("drain", 1) => match infer(&mc.receiver, var) {
            TypeInfo::Known(t) => element_of(&t),
            _ => None,
        },
        ("cloned" | "copied", 0) => iterated_by_ref(&mc.receiver, var),
        ("rev", 0) => owned_items(&mc.receiver, var),
        _ => None,
    }
}

/// `t` of an iterator over `&t`: `x.iter()` of a known sequence.
fn iterated_by_ref(expr: &Expr, var: &dyn Fn(&str) -> Option<TypeInfo>) -> Option<Type> {
    let Expr::MethodCall(mc) = strip(expr) else {
        return None;
    };
    match (mc.method.to_string().as_str(), mc.args.len()) {
        ("iter", 0) => match infer(&mc.receiver, var) {
            TypeInfo::Known(t) => element_of(&t),
            _ => None,
        },
        ("rev", 0) => iterated_by_ref(&mc.receiver, var),
        _ => None,
    }
}

/// `t` of an `Option<&t>` taken from a known sequence: `x.first()`, `x.get(i)`,
/// `x.iter().next()`.
fn borrowed_item(expr: &Expr, var: &dyn Fn(&str) -> Option<TypeInfo>) -> Option<Type> {
    let Expr::MethodCall(mc) = strip(expr) else {
        return None;
    };
    match (mc.method.to_string().as_str(), mc.args.len()) {
        ("next", 0) | ("nth", 1) => iterated_by_ref(&mc.receiver, var),
        ("first" | "last" | "front" | "back", 0) | ("get", 1) => iterated_by_ref(&mc.receiver, var)
            .or_else(|| match infer(&mc.receiver, var) {
                TypeInfo::Known(t) => element_of(&t),
                _ => None,
            }),
        _ => None,
    }
}

/// The type of a call's value: a constructor of a type the path names, or `Some(x)`.
fn infer_call(call: &syn::ExprCall, var: &dyn Fn(&str) -> Option<TypeInfo>) -> TypeInfo {
    use TypeInfo::*;
    let Expr::Path(p) = &*call.func else {
        return Unknown;
    };
    if p.qself.is_some() {
        return Unknown;
    }
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let arg = || call.args.first().map(|a| infer(a, var));
    match segs
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["Some"] if call.args.len() == 1 => match arg() {
            Some(Known(t)) => Known(option(&t)),
            Some(Borrow(s)) => Borrow(s),
            _ => Unknown,
        },
        ["String", "from" | "new" | "with_capacity"] => Known(parse_quote!(String)),
        // Between sequences of the same items: `VecDeque::from(docs)`.
        [.., owner @ ("Vec" | "VecDeque"), "from"]
            if call.args.len() == 1 && p.path.segments[segs.len() - 2].arguments.is_none() =>
        {
            let item = match arg() {
                Some(Known(t)) => element_of(&t),
                _ => None,
            };
            match (item, *owner) {
                (Some(t), "Vec") => Known(parse_quote!(::std::vec::Vec<#t>)),
                (Some(t), _) => Known(parse_quote!(::std::collections::VecDeque<#t>)),
                (None, _) => Unknown,
            }
        }
        [.., "new" | "default" | "with_capacity" | "from"] => {
            constructed_type(&p.path).map_or(Unknown, Known)
        }
        // `Event::Created(x)`: a tuple variant names its enum.
        _ => variant_owner(&p.path).map_or(Unknown, Known),
    }
}

/// Generic types whose arguments a constructor call leaves to inference: `Vec::new()` says
/// nothing of `Vec<T>`'s `T` unless a turbofish does.
const GENERIC_STD: &[&str] = &[
    "Vec",
    "VecDeque",
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "BinaryHeap",
    "LinkedList",
    "Option",
    "Result",
    "Box",
    "Rc",
    "Arc",
    "Cell",
    "RefCell",
    "Mutex",
    "RwLock",
    "PhantomData",
    "Cow",
    "Reverse",
    "Wrapping",
    "Range",
    "Bound",
    "ControlFlow",
    "UpdateReply",
    "Race2",
    "Race3",
    "Race4",
];

/// Traits whose functions are called through the trait's name (`Default::default()`).
const TRAITS: &[&str] = &["Default", "From", "Into", "Clone", "FromIterator", "Self"];

/// Whether a name is written like a type (`Saga`) rather than a module or function (`saga`).
fn is_type_name(ident: &Ident) -> bool {
    ident
        .to_string()
        .starts_with(|c: char| c.is_ascii_uppercase())
}

/// Whether a name is written like an enum variant (`Pending`), not a constant (`MAX`).
fn is_variant_name(ident: &Ident) -> bool {
    let name = ident.to_string();
    name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().any(|c| c.is_lowercase())
}

/// The type a path without its last segment names, when it clearly names one: its last segment
/// is capitalised, is not a trait called by name, and any generic arguments are written out.
fn owner_type(path: &syn::Path) -> Option<Type> {
    let n = path.segments.len();
    if n < 2 {
        return None;
    }
    let owner = &path.segments[n - 2];
    let name = owner.ident.to_string();
    if !is_type_name(&owner.ident) || TRAITS.contains(&name.as_str()) {
        return None;
    }
    if owner.arguments.is_none() && GENERIC_STD.contains(&name.as_str()) {
        return None;
    }
    let mut ty = path.clone();
    ty.segments.pop();
    let ty_path = syn::Path {
        leading_colon: ty.leading_colon,
        segments: ty.segments.into_pairs().map(|p| p.into_value()).collect(),
    };
    Some(parse_quote!(#ty_path))
}

/// `Saga::new()`, `Config::default()`, `Buffer::with_capacity(n)`, `Id::from(x)`: the type.
fn constructed_type(path: &syn::Path) -> Option<Type> {
    owner_type(path)
}

/// `Status::Pending` or `Event::Created(..)`: the enum the variant belongs to.
fn variant_owner(path: &syn::Path) -> Option<Type> {
    let last = path.segments.last()?;
    if !is_variant_name(&last.ident) || !last.arguments.is_none() {
        return None;
    }
    owner_type(path)
}

/// The type a struct literal builds: `Order { .. }`, `orders::Order { .. }`, or the enum of a
/// struct variant, `Event::Shipped { .. }`.
fn struct_type(path: &syn::Path) -> Option<Type> {
    let last = path.segments.last()?;
    if path.segments.len() == 1 {
        return (last.ident != "Self").then(|| parse_quote!(#path));
    }
    let owner = &path.segments[path.segments.len() - 2];
    if is_type_name(&owner.ident) {
        variant_owner(path)
    } else if is_type_name(&last.ident) {
        Some(parse_quote!(#path))
    } else {
        None
    }
}

/// The common type of a list of elements (of an array or `vec![..]`): the first one known. All
/// elements have one type, so one known element is enough; a borrowed one makes it a borrow.
fn element_type(elems: &[&Expr], var: &dyn Fn(&str) -> Option<TypeInfo>) -> TypeInfo {
    let mut found = TypeInfo::Unknown;
    for e in elems {
        match infer(e, var) {
            TypeInfo::Borrow(s) => return TypeInfo::Borrow(s),
            TypeInfo::Known(t) if matches!(found, TypeInfo::Unknown) => found = TypeInfo::Known(t),
            _ => {}
        }
    }
    found
}

/// The elements written in `vec![..]`: the listed ones, or the repeated one of `vec![x; n]`.
fn vec_elements(tokens: &proc_macro2::TokenStream) -> Option<Vec<Expr>> {
    let parser = |input: syn::parse::ParseStream<'_>| -> syn::Result<Vec<Expr>> {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let first: Expr = input.parse()?;
        if input.peek(syn::Token![;]) {
            let _: syn::Token![;] = input.parse()?;
            let _: Expr = input.parse()?;
            return Ok(vec![first]);
        }
        let mut elems = vec![first];
        while !input.is_empty() {
            let _: syn::Token![,] = input.parse()?;
            if input.is_empty() {
                break;
            }
            elems.push(input.parse()?);
        }
        Ok(elems)
    };
    syn::parse::Parser::parse2(parser, tokens.clone()).ok()
}

/// Whether `ty` is one of the named sequences (by its last segment).
fn is_sequence(ty: &Type, names: &[&str]) -> bool {
    matches!(ty, Type::Path(tp) if tp.qself.is_none()
        && tp.path.segments.last().is_some_and(|s| names.iter().any(|n| s.ident == n)))
}

/// The element type of a known owned sequence: `Vec<T>`, `VecDeque<T>`, `[T; N]`, ...
fn element_of(ty: &Type) -> Option<Type> {
    match ty {
        Type::Array(a) => Some((*a.elem).clone()),
        Type::Paren(p) => element_of(&p.elem),
        Type::Group(g) => element_of(&g.elem),
        _ => first_generic_of(ty, &["Vec", "VecDeque", "BinaryHeap", "LinkedList"]),
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
            let ty = match ty {
                _ if pi.by_ref.is_some() => Borrow(pi.ident.span()),
                // `let (a, b): (Item, _) = ..` names `a`'s type, not `b`'s.
                Known(t) if contains_placeholder(&t) => Unknown,
                other => other,
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
            let last = ts.path.segments.last();
            let variant = last.map(|s| s.ident.to_string());
            // `Some::<T>(x)`, `Ok::<T, _>(x)`, `Err::<_, E>(e)`: the pattern names the type.
            let written = last.and_then(|seg| {
                let PathArguments::AngleBracketed(args) = &seg.arguments else {
                    return None;
                };
                let n = usize::from(variant.as_deref() == Some("Err"));
                match args.args.iter().nth(n) {
                    Some(GenericArgument::Type(Type::Infer(_))) | None => None,
                    Some(GenericArgument::Type(t)) => Some(t.clone()),
                    Some(_) => None,
                }
            });
            let inner = match (&ty, variant.as_deref()) {
                _ if written.is_some()
                    && matches!(variant.as_deref(), Some("Some" | "Ok" | "Err")) =>
                {
                    written.map_or(Unknown, |t| from_annotation(&t))
                }
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

/// How a `for` loop that suspends iterates: the type of its saved position, its item type, and
/// whether the iterable is an array, which is turned into a `VecDeque` first.
pub(crate) struct Iteration {
    pub(crate) iter: Type,
    pub(crate) item: Type,
    pub(crate) array: bool,
}

/// Owned types a `for` loop that suspends cannot iterate, reported by the macro with its hint.
const NOT_ITERABLE: &[&str] = &[
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "BinaryHeap",
    "String",
    "Option",
    "Result",
];

/// For a `for` loop that suspends: the saved iterator type and the item type, if known.
pub(crate) fn iteration_types(
    iterable: &Expr,
    var: &dyn Fn(&str) -> Option<TypeInfo>,
) -> Result<Iteration, &'static str> {
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
                Some(item) => Ok(Iteration {
                    iter: parse_quote!(::weft_runtime::__private::DurableRange<#item>),
                    item,
                    array: false,
                }),
                None => Err("range"),
            }
        }
        other => match infer(other, var) {
            TypeInfo::Known(ty) => iteration_of(&ty),
            TypeInfo::Borrow(_) => Err("borrow"),
            TypeInfo::Unknown => Err("unknown"),
        },
    }
}

fn iteration_of(ty: &Type) -> Result<Iteration, &'static str> {
    let queue = |item: Type, array: bool| Iteration {
        iter: parse_quote!(::weft_runtime::__private::VecDeque<#item>),
        item,
        array,
    };
    match ty {
        Type::Paren(p) => iteration_of(&p.elem),
        Type::Group(g) => iteration_of(&g.elem),
        Type::Array(a) => Ok(queue((*a.elem).clone(), true)),
        Type::Path(tp) => {
            if let Some(item) = first_generic_of(ty, &["Vec", "VecDeque"]) {
                return Ok(queue(item, false));
            }
            let last = tp.path.segments.last().map(|s| s.ident.to_string());
            if tp.qself.is_none() && last.is_some_and(|l| NOT_ITERABLE.contains(&l.as_str())) {
                return Err("collection");
            }
            // A type named another way, such as an activity's output
            // (`<list_documents as Activity>::Output`) or an alias: the position and the item
            // are what the runtime's `DurableIterable` says, and a type it does not implement is
            // a compile error that names it.
            let iter: Type =
                parse_quote!(<#ty as ::weft_runtime::__private::DurableIterable>::Iter);
            Ok(Iteration {
                item: parse_quote!(<#iter as ::weft_runtime::__private::DurableIter>::Item),
                iter,
                array: false,
            })
        }
        _ => Err("collection"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    /// The inferred type of `src` as compact text, with `queue: VecDeque<Document>`,
    /// `docs: Vec<Document>`, `saga: Saga` and `ids: [u64; 3]` known.
    fn inferred(src: &str) -> String {
        let var = |name: &str| {
            let ty: Type = match name {
                "queue" => parse_quote!(VecDeque<Document>),
                "docs" => parse_quote!(Vec<Document>),
                "saga" => parse_quote!(Saga),
                "ids" => parse_quote!([u64; 3]),
                "doc" => parse_quote!(Document),
                _ => return None,
            };
            Some(TypeInfo::Known(ty))
        };
        match infer(&syn::parse_str(src).unwrap(), &var) {
            TypeInfo::Known(t) => t.to_token_stream().to_string().replace(' ', ""),
            TypeInfo::Borrow(_) => "borrow".into(),
            TypeInfo::Unknown => "unknown".into(),
        }
    }

    #[test]
    fn items_taken_from_known_collections() {
        let option = "::core::option::Option<Document>";
        assert_eq!(inferred("queue.pop_front()"), option);
        assert_eq!(inferred("queue.pop_back()"), option);
        assert_eq!(inferred("docs.pop()"), option);
        assert_eq!(inferred("docs.remove(0)"), "Document");
        assert_eq!(inferred("queue.remove(0)"), option);
        assert_eq!(inferred("docs.into_iter().next()"), option);
        assert_eq!(inferred("docs.iter().next().cloned()"), option);
        assert_eq!(inferred("docs.first().cloned()"), option);
        assert_eq!(inferred("docs.pop().unwrap()"), "Document");
        assert_eq!(inferred("docs[0].clone()"), "Document");
        assert_eq!(inferred("ids[1]"), "u64");
        assert_eq!(
            inferred("saga.pop()"),
            "::core::option::Option<::weft_runtime::Compensation>"
        );
        // A borrowed item is a borrow, and an unknown collection says nothing.
        assert_eq!(inferred("docs.iter().next()"), "borrow");
        assert_eq!(inferred("docs.first()"), "borrow");
        assert_eq!(inferred("other.pop_front()"), "unknown");
    }

    #[test]
    fn constructors_of_a_named_type() {
        assert_eq!(inferred("Saga::new()"), "Saga");
        assert_eq!(inferred("weft_runtime::Saga::new()"), "weft_runtime::Saga");
        assert_eq!(inferred("Config::default()"), "Config");
        assert_eq!(inferred("Buffer::with_capacity(8)"), "Buffer");
        assert_eq!(inferred("Id::from(7u64)"), "Id");
        assert_eq!(inferred("Vec::<u64>::new()"), "Vec::<u64>");
        assert_eq!(
            inferred("VecDeque::from(docs)"),
            "::std::collections::VecDeque<Document>"
        );
        assert_eq!(inferred("Status::Pending"), "Status");
        assert_eq!(inferred("Event::Created(7)"), "Event");
        assert_eq!(inferred("Event::Shipped { at: 7 }"), "Event");
        assert_eq!(
            inferred("billing::Invoice { total: 1 }"),
            "billing::Invoice"
        );
        assert_eq!(inferred("Some(doc)"), "::core::option::Option<Document>");
        // Generic arguments left to inference, traits called by name, constants and functions
        // of a module name no type.
        assert_eq!(inferred("Vec::new()"), "unknown");
        assert_eq!(inferred("HashMap::with_capacity(4)"), "unknown");
        assert_eq!(inferred("Default::default()"), "unknown");
        assert_eq!(inferred("Duration::MAX"), "unknown");
        assert_eq!(inferred("orders::load()"), "unknown");
    }

    #[test]
    fn vectors_and_arrays_of_a_known_element() {
        assert_eq!(
            inferred("vec![doc.clone(), doc]"),
            "::std::vec::Vec<Document>"
        );
        assert_eq!(
            inferred("vec![String::from(\"a\")]"),
            "::std::vec::Vec<String>"
        );
        assert_eq!(
            inferred("vec![\"a\".to_string(); 3]"),
            "::std::vec::Vec<String>"
        );
        assert_eq!(inferred("vec![1u8, 2]"), "::std::vec::Vec<u8>");
        assert_eq!(inferred("[doc.clone(), doc]"), "[Document;2usize]");
        assert_eq!(inferred("[true; 4]"), "[bool;4]");
        // Unsuffixed integers may become any integer type; string literals borrow.
        assert_eq!(inferred("vec![1, 2]"), "unknown");
        assert_eq!(inferred("vec![\"a\", \"b\"]"), "borrow");
    }

    #[test]
    fn a_group_is_typed_from_its_operations() {
        let ctx: Ident = parse_quote!(ctx);
        let all = |src: &str| {
            let group: Expr = syn::parse_str(src).unwrap();
            match await_type(
                &Op::All {
                    group: Box::new(group),
                },
                false,
                &ctx,
            ) {
                TypeInfo::Known(t) => t.to_token_stream().to_string().replace(' ', ""),
                _ => "unknown".into(),
            }
        };
        let branch = "::core::result::Result<<indexas::weft_runtime::Activity>::Output,::weft_runtime::ActivityError>";
        assert_eq!(
            all("docs.iter().map(|d| ctx.run(index, d.clone())).collect::<Vec<_>>()"),
            format!("::std::vec::Vec<{branch}>")
        );
        assert_eq!(
            all("Vec::from([ctx.run(index, a), ctx.run(index, b)])"),
            format!("::std::vec::Vec<{branch}>")
        );
        assert_eq!(
            all("(ctx.run(index, a), ctx.sleep(d))"),
            format!("({branch},(),)")
        );
        // Not evidently a `Vec`: left to an annotation.
        assert_eq!(
            all("if c { (ctx.run(index, a),) } else { (ctx.run(index, b),) }"),
            "unknown"
        );
        assert_eq!(all("made_elsewhere(ctx)"), "unknown");
    }
}
