//! `#[activity]`: an `async fn` in, a unit struct implementing `Activity` out.
//!
//! The expansion runs in stages: [`Args`] parses the attribute arguments, [`Checked`] checks the
//! signature and extracts the input and output types, [`generate`] writes the marker struct and
//! its `Activity` impl, and [`fallback`] writes what can still be written when anything was
//! wrong (the marker struct, an impl that never runs when the types are known, and the body), so
//! one mistake does not cascade into "cannot find value" errors where the activity is used.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Attribute, Expr, FnArg, Ident, ItemFn, Lit, LitStr, ReturnType, Type};

use crate::diagnostics::Diagnostics;

/// Expands `#[activity(args)] async fn ...`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    let item = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(item) => item,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let func = match item {
        syn::Item::Fn(func) => func,
        other => {
            diagnostics.error_at(
                item_keyword_span(&other),
                "`#[activity]` applies to an `async fn`, not to this item; \
                 write the activity as `async fn name(input: Input) -> Result<Output, Error>`",
            );
            let errors = diagnostics.into_compile_errors();
            return quote!(#other #errors);
        }
    };
    let args = Args::parse(attr, &mut diagnostics);
    let checked = Checked::new(&func, &mut diagnostics);
    if checked.has_receiver {
        // A method lives in an `impl` block, where a struct cannot be declared: keep the
        // function so the block still parses, and report why it cannot be an activity.
        let errors = diagnostics.into_compile_errors();
        return quote!(#func #errors);
    }
    if diagnostics.has_errors() {
        let errors = diagnostics.into_compile_errors();
        let fallback = fallback(&func, &args, &checked);
        return quote!(#fallback #errors);
    }
    generate(&func, &args, &checked)
}

/// The span of the keyword that says what kind of item this is, for "not a function" errors.
fn item_keyword_span(item: &syn::Item) -> Span {
    match item {
        syn::Item::Struct(item) => item.struct_token.span,
        syn::Item::Enum(item) => item.enum_token.span,
        syn::Item::Union(item) => item.union_token.span,
        syn::Item::Impl(item) => item.impl_token.span,
        syn::Item::Trait(item) => item.trait_token.span,
        syn::Item::Mod(item) => item.mod_token.span,
        syn::Item::Const(item) => item.const_token.span,
        syn::Item::Static(item) => item.static_token.span,
        syn::Item::Type(item) => item.type_token.span,
        syn::Item::Use(item) => item.use_token.span,
        other => other.span(),
    }
}

/// The arguments accepted in `#[activity(...)]`.
const ARG_NAMES: [&str; 6] = [
    "name",
    "max_attempts",
    "timeout_ms",
    "initial_backoff_ms",
    "max_backoff_ms",
    "backoff_percent",
];

/// The same, for error messages.
const KNOWN_ARGS: &str = "`name`, `max_attempts`, `timeout_ms`, `initial_backoff_ms`, \
                          `max_backoff_ms`, `backoff_percent`";

/// The parsed `#[activity(...)]` arguments. Each is `None` when absent or invalid.
#[derive(Default)]
struct Args {
    /// `name = "..."`: the stable activity name.
    name: Option<LitStr>,
    /// `max_attempts = n`: attempts in total, at least 1.
    max_attempts: Option<u32>,
    /// `timeout_ms = n`: the per-attempt timeout, at least 1.
    timeout_ms: Option<u64>,
    /// `initial_backoff_ms = n`: the delay before the second attempt.
    initial_backoff_ms: Option<u64>,
    /// `max_backoff_ms = n`: the cap on any delay.
    max_backoff_ms: Option<u64>,
    /// `backoff_percent = n`: how each delay grows, at least 100.
    backoff_percent: Option<u32>,
}

impl Args {
    /// Parses the attribute arguments, recording every problem and skipping past it.
    fn parse(attr: TokenStream, diagnostics: &mut Diagnostics) -> Args {
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            let Some(value) = arg_value(&meta, &key, diagnostics)? else {
                return Ok(());
            };
            if seen.contains(&key) {
                diagnostics.error_spanned(
                    &meta.path,
                    format_args!("`{key}` is given twice; keep one of them"),
                );
                return Ok(());
            }
            seen.push(key.clone());
            match key.as_str() {
                "name" => args.name = activity_name(&value, diagnostics),
                "max_attempts" => {
                    args.max_attempts = integer::<u32>(&value, &key, diagnostics).and_then(|n| {
                        if n == 0 {
                            diagnostics.error_spanned(
                                &value,
                                "`max_attempts` counts the first attempt too, so it must be at \
                                 least 1; write `max_attempts = 1` for no retries",
                            );
                            return None;
                        }
                        Some(n)
                    })
                }
                "timeout_ms" => {
                    args.timeout_ms = integer::<u64>(&value, &key, diagnostics).and_then(|n| {
                        if n == 0 {
                            diagnostics.error_spanned(
                                &value,
                                "`timeout_ms = 0` would time out every attempt before it starts; \
                                 give a positive timeout, or leave `timeout_ms` out for none",
                            );
                            return None;
                        }
                        Some(n)
                    })
                }
                "initial_backoff_ms" => {
                    args.initial_backoff_ms = integer::<u64>(&value, &key, diagnostics)
                }
                "max_backoff_ms" => args.max_backoff_ms = integer::<u64>(&value, &key, diagnostics),
                "backoff_percent" => {
                    args.backoff_percent = integer::<u32>(&value, &key, diagnostics).and_then(|n| {
                        if n < 100 {
                            diagnostics.error_spanned(
                                &value,
                                "`backoff_percent` below 100 would shrink the delay after \
                                     each attempt; use `100` for a constant delay or `200` to \
                                     double it",
                            );
                            return None;
                        }
                        Some(n)
                    })
                }
                _ => diagnostics.error_spanned(&meta.path, unknown_arg(&key)),
            }
            Ok(())
        });
        if let Err(error) = syn::parse::Parser::parse2(parser, attr) {
            diagnostics.push(error);
        }
        args
    }
}

/// The value of `key = value`, or `None` (with an error recorded) when there is no `= value`.
/// Only a syntax error that leaves the rest unparseable is returned as `Err`.
fn arg_value(
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> syn::Result<Option<Expr>> {
    if meta.input.peek(syn::Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    if meta.input.peek(syn::token::Paren) {
        // Skip `key(...)` so the arguments after it are still checked.
        let _: proc_macro2::Group = meta.input.parse()?;
    }
    let Some(example) = example(key) else {
        diagnostics.error_spanned(&meta.path, unknown_arg(key));
        return Ok(None);
    };
    diagnostics.error_spanned(
        &meta.path,
        format_args!("`{key}` needs a value; write `{example}`"),
    );
    Ok(None)
}

/// The message for an unknown argument, with the argument that was probably meant.
fn unknown_arg(key: &str) -> String {
    let meant = match key {
        "retries" | "max_retries" | "attempts" | "retry" => Some("max_attempts"),
        "timeout" | "attempt_timeout" | "timeout_secs" | "timeout_s" => Some("timeout_ms"),
        "backoff" | "initial_backoff" | "backoff_ms" => Some("initial_backoff_ms"),
        "max_backoff" => Some("max_backoff_ms"),
        "backoff_factor" | "multiplier" => Some("backoff_percent"),
        _ => ARG_NAMES
            .into_iter()
            .find(|known| edit_distance(key, known) <= 2),
    };
    match meant.and_then(example) {
        Some(example) => {
            format!("unknown `#[activity]` argument `{key}`; did you mean `{example}`?")
        }
        None => format!("unknown `#[activity]` argument `{key}`; expected one of {KNOWN_ARGS}"),
    }
}

/// Levenshtein distance, to suggest the argument a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// How to write argument `key`, or `None` if there is no such argument.
fn example(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" => "name = \"payments.charge\"",
        "max_attempts" => "max_attempts = 3",
        "timeout_ms" => "timeout_ms = 5000",
        "initial_backoff_ms" => "initial_backoff_ms = 100",
        "max_backoff_ms" => "max_backoff_ms = 60000",
        "backoff_percent" => "backoff_percent = 200",
        _ => return None,
    })
}

/// A non-empty string literal naming the activity.
fn activity_name(value: &Expr, diagnostics: &mut Diagnostics) -> Option<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(name),
            ..
        }) if !name.value().trim().is_empty() => Some(name.clone()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(name),
            ..
        }) => {
            diagnostics.error_spanned(
                name,
                "the activity name is empty; give a stable name such as `name = \"payments.charge\"`",
            );
            None
        }
        other => {
            diagnostics.error_spanned(
                other,
                "`name` expects a string literal; write `name = \"payments.charge\"`",
            );
            None
        }
    }
}

/// An unsuffixed or matching integer literal that fits `T`.
fn integer<T>(value: &Expr, key: &str, diagnostics: &mut Diagnostics) -> Option<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<T>() {
            Ok(n) => Some(n),
            Err(_) => {
                diagnostics.error_spanned(
                    int,
                    format_args!(
                        "`{key}` is out of range for a `{}`; give a smaller value",
                        std::any::type_name::<T>()
                    ),
                );
                None
            }
        },
        other => {
            diagnostics.error_spanned(
                other,
                format_args!(
                    "`{key}` expects an integer literal, as in `{}`; \
                     the macro cannot evaluate constants or expressions",
                    example(key).unwrap_or_default()
                ),
            );
            None
        }
    }
}

/// How the activity takes its `ActivityContext`.
#[derive(Clone, Copy)]
enum ContextArg {
    /// `ctx: ActivityContext`
    Value,
    /// `ctx: &ActivityContext`
    Ref,
    /// `ctx: &mut ActivityContext`
    RefMut,
}

/// What the signature check learned. Types are `None` where the signature is unusable.
struct Checked<'a> {
    /// Whether the first parameter is the activity context, and how it is taken.
    context: Option<ContextArg>,
    /// The types of the input parameters, in order; `None` if any is unusable.
    inputs: Option<Vec<&'a Type>>,
    /// `T` and `E` of `Result<T, E>`, if the return type has that shape.
    output: Option<(&'a Type, &'a Type)>,
    /// Whether the function takes `self`, so it sits in an `impl` block.
    has_receiver: bool,
}

impl<'a> Checked<'a> {
    /// Checks the signature of `func`, recording every problem.
    fn new(func: &'a ItemFn, diagnostics: &mut Diagnostics) -> Checked<'a> {
        let sig = &func.sig;
        if let Some(token) = &sig.constness {
            diagnostics.error_spanned(
                token,
                "an activity cannot be a `const fn`: it runs side effects at run time; remove `const`",
            );
        }
        if sig.asyncness.is_none() {
            diagnostics.error_spanned(
                sig.fn_token,
                format_args!(
                    "an activity must be an `async fn`, because the engine awaits it on its \
                     runtime; write `async fn {}`",
                    sig.ident
                ),
            );
        }
        if let syn::Safety::Unsafe(token) = &sig.safety {
            diagnostics.error_spanned(
                token,
                "an activity cannot be `unsafe`: the engine calls it with no way to uphold a \
                 safety contract; remove `unsafe` and keep the `unsafe` block inside the body",
            );
        }
        if let Some(abi) = &sig.abi {
            diagnostics.error_spanned(
                abi,
                "an activity cannot declare an ABI: the engine calls it as a Rust function; \
                 remove the `extern`",
            );
        }
        if !sig.generics.params.is_empty() {
            diagnostics.error_spanned(
                &sig.generics,
                "an activity cannot be generic: the engine looks an activity up by name and \
                 decodes one input type for it; use concrete types, or one activity per type",
            );
        }
        if let Some(where_clause) = &sig.generics.where_clause {
            diagnostics.error_spanned(
                where_clause.where_token,
                "an activity cannot have a `where` clause: it has no generic parameters to \
                 bound; remove the `where` clause",
            );
        }

        let mut context = None;
        let mut inputs = Some(Vec::new());
        let mut has_receiver = false;
        for (index, arg) in sig.inputs.iter().enumerate() {
            let pat_type = match arg {
                FnArg::Receiver(receiver) => {
                    has_receiver = true;
                    diagnostics.error_spanned(
                        receiver.self_token,
                        "an activity cannot take `self`: it is a free function that the engine \
                         calls by name; move it out of the `impl` block and pass what it needs \
                         in its input",
                    );
                    continue;
                }
                FnArg::Typed(pat_type) => pat_type,
            };
            if let Some(kind) = context_arg(&pat_type.ty) {
                if index == 0 {
                    context = Some(kind);
                } else {
                    diagnostics.error_spanned(
                        &pat_type.ty,
                        "the activity context must be the first parameter, so the macro can \
                         tell it apart from the input; move this parameter first",
                    );
                }
                continue;
            }
            if !input_type_ok(&pat_type.ty, diagnostics) {
                inputs = None;
            }
            if let Some(inputs) = &mut inputs {
                inputs.push(&*pat_type.ty);
            }
        }
        if has_receiver {
            inputs = None;
        }

        let output = match &sig.output {
            ReturnType::Default => {
                diagnostics.error_at(
                    sig.paren_token.span.close(),
                    "an activity must return `Result<T, E>`: the engine stores the `Ok` value \
                     and retries on `Err`; add a return type such as \
                     `-> Result<Receipt, ActivityError>`",
                );
                None
            }
            ReturnType::Type(_, ty) => result_types(ty, diagnostics),
        };

        Checked {
            context,
            inputs,
            output,
            has_receiver,
        }
    }
}

/// Whether `ty` is the activity context (its last path segment is `ActivityContext`), and how
/// it is taken.
fn context_arg(ty: &Type) -> Option<ContextArg> {
    let (ty, kind) = match peel(ty) {
        Type::Reference(reference) if reference.mutability.is_some() => {
            (peel(&reference.elem), ContextArg::RefMut)
        }
        Type::Reference(reference) => (peel(&reference.elem), ContextArg::Ref),
        other => (other, ContextArg::Value),
    };
    match ty {
        Type::Path(path)
            if path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|segment| segment.ident == "ActivityContext") =>
        {
            Some(kind)
        }
        _ => None,
    }
}

/// Removes invisible groups and parentheses around a type.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// Checks that an input type can be decoded into an owned value, recording any problem.
fn input_type_ok(ty: &Type, diagnostics: &mut Diagnostics) -> bool {
    /// Finds borrows and `impl Trait` anywhere inside a type.
    struct Finder<'d> {
        diagnostics: &'d mut Diagnostics,
        ok: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            self.ok = false;
            self.diagnostics.error_spanned(
                reference,
                "an activity input cannot be borrowed: the engine decodes it from the workflow \
                 state into an owned value; take an owned type such as `String` or `Vec<T>`",
            );
        }
        fn visit_type_impl_trait(&mut self, impl_trait: &'ast syn::TypeImplTrait) {
            self.ok = false;
            self.diagnostics.error_spanned(
                impl_trait.impl_token,
                "an activity input cannot be `impl Trait`: the engine decodes one concrete \
                 input type; name a concrete type",
            );
        }
    }
    let mut finder = Finder {
        diagnostics,
        ok: true,
    };
    finder.visit_type(ty);
    finder.ok
}

/// `T` and `E` of a `Result<T, E>` return type, or an error saying what to write.
fn result_types<'a>(ty: &'a Type, diagnostics: &mut Diagnostics) -> Option<(&'a Type, &'a Type)> {
    let not_result = |diagnostics: &mut Diagnostics| {
        diagnostics.error_spanned(
            ty,
            "an activity must return `Result<T, E>`: the engine stores the `Ok` value and \
             retries on `Err`; wrap the value, as in `Result<Receipt, ActivityError>`",
        );
        None
    };
    let Type::Path(path) = peel(ty) else {
        return not_result(diagnostics);
    };
    let Some(last) = path.path.segments.last() else {
        return not_result(diagnostics);
    };
    if path.qself.is_some() || last.ident != "Result" {
        return not_result(diagnostics);
    }
    let types: Vec<&Type> = match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        [ok, err] => Some((ok, err)),
        [_] => {
            diagnostics.error_spanned(
                last,
                "this `Result` alias hides its error type, which the macro needs to convert \
                 errors into `ActivityError`; spell both out, as in `Result<T, std::io::Error>`",
            );
            None
        }
        _ => not_result(diagnostics),
    }
}

/// The attributes of the function, split by where they belong in the expansion.
struct SplitAttrs<'a> {
    /// `doc`, `cfg`, `cfg_attr` and `deprecated`: they describe the activity, so they go on the
    /// marker struct.
    marker: Vec<&'a Attribute>,
    /// `cfg`: the impl exists only where the struct does.
    cfg: Vec<&'a Attribute>,
    /// Everything else (`allow`, `tracing::instrument`, ...): it goes on the function body.
    body: Vec<&'a Attribute>,
}

fn split_attrs(attrs: &[Attribute]) -> SplitAttrs<'_> {
    let mut split = SplitAttrs {
        marker: Vec::new(),
        cfg: Vec::new(),
        body: Vec::new(),
    };
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("cfg") {
            split.cfg.push(attr);
            split.marker.push(attr);
        } else if path.is_ident("doc") || path.is_ident("cfg_attr") || path.is_ident("deprecated") {
            split.marker.push(attr);
        } else {
            split.body.push(attr);
        }
    }
    split
}

/// The unit struct that names the activity in both namespaces.
fn marker_struct(func: &ItemFn, attrs: &SplitAttrs<'_>) -> TokenStream {
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let marker_attrs = &attrs.marker;
    quote! {
        #(#marker_attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #ident;
    }
}

/// The stable name: `name = "..."`, or the function's name.
fn name_literal(func: &ItemFn, args: &Args) -> LitStr {
    args.name.clone().unwrap_or_else(|| {
        let ident = &func.sig.ident;
        LitStr::new(&ident.unraw().to_string(), ident.span())
    })
}

/// `fn options` when any option is given, building on the defaults.
fn options_fn(args: &Args) -> TokenStream {
    let private = quote!(::weft_runtime::__private);
    let millis = |ms: u64| quote!(::core::time::Duration::from_millis(#ms));
    let mut retry = Vec::new();
    if let Some(n) = args.max_attempts {
        retry.push(quote!(max_attempts: #n));
    }
    if let Some(ms) = args.initial_backoff_ms {
        let d = millis(ms);
        retry.push(quote!(initial_backoff: #d));
    }
    if let Some(ms) = args.max_backoff_ms {
        let d = millis(ms);
        retry.push(quote!(max_backoff: #d));
    }
    if let Some(n) = args.backoff_percent {
        retry.push(quote!(backoff_percent: #n));
    }
    let mut fields = Vec::new();
    if !retry.is_empty() {
        fields.push(quote! {
            retry: #private::RetryPolicy {
                #(#retry,)*
                ..::core::default::Default::default()
            }
        });
    }
    if let Some(ms) = args.timeout_ms {
        let d = millis(ms);
        fields.push(quote!(attempt_timeout: ::core::option::Option::Some(#d)));
    }
    if fields.is_empty() {
        return TokenStream::new();
    }
    quote! {
        fn options(&self) -> #private::ActivityOptions {
            #private::ActivityOptions {
                #(#fields,)*
                ..::core::default::Default::default()
            }
        }
    }
}

/// Lints that generated code must not trip in the user's crate. They sit on the impl, not on
/// the enclosing block, because the user's own function body shares that block and keeps its
/// lints.
fn impl_allows() -> TokenStream {
    quote! {
        #[allow(
            deprecated,
            unused_qualifications,
            clippy::needless_update,
            clippy::useless_conversion
        )]
    }
}

/// The complete expansion of a valid activity.
fn generate(func: &ItemFn, args: &Args, checked: &Checked<'_>) -> TokenStream {
    let (Some(inputs), Some((_, error))) = (&checked.inputs, checked.output) else {
        unreachable!("a signature without errors has known input and output types")
    };
    let private = quote!(::weft_runtime::__private);

    // Synthesized names: mixed-site, so they never capture or shadow the user's names.
    let ctx = Ident::new("ctx", Span::mixed_site());
    let input = Ident::new("input", Span::mixed_site());
    let output = Ident::new("output", Span::mixed_site());
    let failure = Ident::new("error", Span::mixed_site());

    let (unpack, mut call_args) = match inputs.len() {
        0 => (quote!(let () = #input;), Vec::new()),
        1 => (TokenStream::new(), vec![quote!(#input)]),
        n => {
            let names: Vec<Ident> = (0..n)
                .map(|i| Ident::new(&format!("arg{i}"), Span::mixed_site()))
                .collect();
            (
                quote!(let (#(#names,)*) = #input;),
                names.iter().map(|name| quote!(#name)).collect(),
            )
        }
    };
    let (ctx_param, ctx_rebind) = match checked.context {
        Some(ContextArg::Value) => {
            call_args.insert(0, quote!(#ctx));
            (quote!(#ctx), TokenStream::new())
        }
        Some(ContextArg::Ref) => {
            call_args.insert(0, quote!(&#ctx));
            (quote!(#ctx), TokenStream::new())
        }
        Some(ContextArg::RefMut) => {
            call_args.insert(0, quote!(&mut #ctx));
            (quote!(#ctx), quote!(let mut #ctx = #ctx;))
        }
        None => (quote!(_), TokenStream::new()),
    };
    // The conversion names the user's error type, so a type that does not convert is reported
    // on it: "the trait bound `ActivityError: From<GatewayError>` is not satisfied".
    let into_error = quote_spanned! {error.span()=>
        <#error as ::core::convert::Into<#private::ActivityError>>::into
    };
    // The async block takes the span of the user's `async`, so "future cannot be sent between
    // threads safely" points at the function rather than at the attribute.
    let async_span = func
        .sig
        .asyncness
        .map_or_else(Span::call_site, |token| token.span);
    let body_fn = body_fn_ident();
    let future = quote_spanned! {async_span=>
        async move {
            #ctx_rebind
            #unpack
            match #body_fn(#(#call_args),*).await {
                ::core::result::Result::Ok(#output) => ::core::result::Result::Ok(#output),
                ::core::result::Result::Err(#failure) => {
                    ::core::result::Result::Err(#into_error(#failure))
                }
            }
        }
    };
    let returns = quote_spanned! {async_span=>
        impl ::core::future::Future<
            Output = ::core::result::Result<
                <Self as #private::Activity>::Output,
                #private::ActivityError,
            >,
        > + ::core::marker::Send
    };
    let execute = quote! {
        fn execute(
            &self,
            #ctx_param: #private::ActivityContext,
            #input: <Self as #private::Activity>::Input,
        ) -> #returns {
            #future
        }
    };
    expansion(func, args, checked, execute, TokenStream::new())
}

/// The name of the user's function inside the expansion. Mixed-site like the other synthesized
/// names; as an item it still resolves at the call site, hence a name no one writes.
fn body_fn_ident() -> Ident {
    Ident::new("__weft_activity_body", Span::mixed_site())
}

/// What to emit when the activity has errors: the marker struct, so uses of the name resolve;
/// when the types are known, an `Activity` impl that is never run, so `ctx.run` calls
/// type-check instead of piling up follow-on errors; and the user's function, unused, so its
/// body is still checked and the imports it uses are not reported as unused.
fn fallback(func: &ItemFn, args: &Args, checked: &Checked<'_>) -> TokenStream {
    let private = quote!(::weft_runtime::__private);
    let execute = quote! {
        fn execute(
            &self,
            _: #private::ActivityContext,
            _: <Self as #private::Activity>::Input,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                <Self as #private::Activity>::Output,
                #private::ActivityError,
            >,
        > + ::core::marker::Send {
            // Never runs: the crate does not compile while the activity has errors.
            ::core::future::pending()
        }
    };
    expansion(func, args, checked, execute, quote!(#[allow(dead_code)]))
}

/// The marker struct, then a block with the `Activity` impl (when the types are known) and the
/// user's function renamed.
fn expansion(
    func: &ItemFn,
    args: &Args,
    checked: &Checked<'_>,
    execute: TokenStream,
    body_allows: TokenStream,
) -> TokenStream {
    let attrs = split_attrs(&func.attrs);
    let marker = marker_struct(func, &attrs);
    let cfg = &attrs.cfg;
    let body_attrs = &attrs.body;
    let mut body_sig = func.sig.clone();
    body_sig.ident = body_fn_ident();
    let block = &func.block;
    let activity_impl = match (&checked.inputs, checked.output) {
        (Some(inputs), Some((output, _))) => {
            let private = quote!(::weft_runtime::__private);
            let ident = &func.sig.ident;
            let name = name_literal(func, args);
            let options = options_fn(args);
            let allows = impl_allows();
            let input_type = match inputs.as_slice() {
                [] => quote!(()),
                [one] => quote!(#one),
                many => quote!((#(#many,)*)),
            };
            quote! {
                #allows
                #[automatically_derived]
                impl #private::Activity for #ident {
                    type Input = #input_type;
                    type Output = #output;
                    const NAME: &'static str = #name;

                    #options

                    #execute
                }
            }
        }
        _ => TokenStream::new(),
    };
    quote! {
        #marker

        #(#cfg)*
        const _: () = {
            #activity_impl

            #(#body_attrs)*
            #body_allows
            #body_sig #block
        };
    }
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    fn expand_pretty(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        crate::pretty(expand(attr, item))
    }

    #[test]
    fn plain() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                /// Charges the card.
                pub async fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
                    gateway::charge(payment).await
                }
            }
        ));
    }

    #[test]
    fn with_context() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                async fn charge_card(ctx: ActivityContext, payment: Payment) -> Result<Charge, ActivityError> {
                    gateway::charge(&ctx.idempotency_key(), payment).await
                }
            }
        ));
    }

    #[test]
    fn with_context_by_reference() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                async fn charge_card(ctx: &weft_runtime::ActivityContext, payment: Payment) -> Result<Charge, ActivityError> {
                    gateway::charge(&ctx.idempotency_key(), payment).await
                }
            }
        ));
    }

    #[test]
    fn renamed() {
        insta::assert_snapshot!(expand_pretty(
            quote!(name = "payments.charge"),
            quote! {
                pub(crate) async fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
                    gateway::charge(payment).await
                }
            }
        ));
    }

    #[test]
    fn with_options() {
        insta::assert_snapshot!(expand_pretty(
            quote!(
                name = "payments.charge",
                max_attempts = 3,
                timeout_ms = 5000,
                initial_backoff_ms = 100
            ),
            quote! {
                pub async fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
                    gateway::charge(payment).await
                }
            }
        ));
    }

    #[test]
    fn zero_params() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                pub async fn exchange_rates() -> Result<Rates, ActivityError> {
                    fetch_rates().await
                }
            }
        ));
    }

    #[test]
    fn several_params_with_patterns() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                pub async fn send_email(ctx: ActivityContext, to: String, Subject(subject): Subject, mut body: String) -> Result<(), ActivityError> {
                    body.push_str(ctx.workflow_id());
                    mailer::send(to, subject, body).await
                }
            }
        ));
    }

    #[test]
    fn custom_error_type_and_attributes() {
        insta::assert_snapshot!(expand_pretty(
            quote!(),
            quote! {
                #[cfg(feature = "payments")]
                #[tracing::instrument]
                pub async fn refund(id: u64) -> std::result::Result<(), PaymentError> {
                    gateway::refund(id).await
                }
            }
        ));
    }

    #[test]
    fn errors_are_reported_together_with_the_marker_struct() {
        insta::assert_snapshot!(expand_pretty(
            quote!(nmae = "x", max_attempts = 0),
            quote! {
                /// Still documented.
                pub fn charge_card<T>(payment: &T) {}
            }
        ));
    }

    #[test]
    fn fallback_keeps_a_typed_impl_when_the_types_are_known() {
        insta::assert_snapshot!(expand_pretty(
            quote!(timeout_ms = "5s"),
            quote! {
                pub fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
                    todo!()
                }
            }
        ));
    }
}
