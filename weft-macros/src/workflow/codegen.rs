//! Generates the marker struct, the state enum and the `Workflow` impl with its step function.
//!
//! In: the signature, the lowered body and the saved set of each await. Out: tokens.
//!
//! The step function matches on the state. `Start` runs the body from the top; the variant of
//! await `k` binds the saved variables, takes the resume value and runs the continuation of `k`:
//! the rest of each enclosing block, and for each enclosing loop the rest of the current
//! iteration (a labelled block that `continue` leaves) followed by the whole loop again. Every
//! durable await in generated code returns `Suspend` with the live variables.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{Expr, Ident, ItemFn, Lifetime, Type};

use super::ir::*;
use super::scan;
use super::signature::Signature;
use super::types;

/// What `break`/`continue` of each suspending loop become at a point of the generated code.
#[derive(Clone, Default)]
struct LoopMap {
    /// Enclosing suspending loops, outermost first: `(id, break, continue)`.
    stack: Vec<(LoopId, TokenStream, TokenStream)>,
}

impl LoopMap {
    fn with(&self, id: LoopId, brk: TokenStream, cont: TokenStream) -> LoopMap {
        let mut m = self.clone();
        m.stack.push((id, brk, cont));
        m
    }
    fn get(&self, id: LoopId) -> Option<&(LoopId, TokenStream, TokenStream)> {
        self.stack.iter().rev().find(|(l, _, _)| *l == id)
    }
}

pub(crate) struct Generator<'a> {
    pub(crate) item: &'a ItemFn,
    pub(crate) sig: &'a Signature,
    pub(crate) lowered: &'a Lowered,
    pub(crate) saved: &'a [BTreeSet<BindingId>],
    pub(crate) name: String,
    pub(crate) version: u32,
    state: Ident,
    variants: Vec<Ident>,
    awaits: HashMap<AwaitId, &'a Await>,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(
        item: &'a ItemFn,
        sig: &'a Signature,
        lowered: &'a Lowered,
        saved: &'a [BTreeSet<BindingId>],
        name: String,
        version: u32,
    ) -> Self {
        let state = format_ident!("{}State", pascal(&item.sig.ident.to_string()));
        let mut awaits = HashMap::new();
        collect_awaits(&lowered.body, &mut awaits);
        let mut variants = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for k in 0..lowered.awaits {
            let base = match &awaits[&k].op {
                Op::Run { activity, .. } => format!(
                    "Await{}",
                    pascal(
                        &activity
                            .segments
                            .last()
                            .map(|s| s.ident.to_string())
                            .unwrap_or_default()
                    )
                ),
                Op::Sleep { .. } => "AwaitSleep".to_string(),
                Op::Signal { ty } => format!("AwaitSignal{}", type_base_name(ty)),
                Op::Child { workflow, .. } => format!(
                    "AwaitChild{}",
                    pascal(
                        &workflow
                            .segments
                            .last()
                            .map(|s| s.ident.to_string())
                            .unwrap_or_default()
                    )
                ),
                Op::Compensate { .. } => "AwaitCompensate".to_string(),
                Op::Update { ty } => format!("AwaitUpdate{}", type_base_name(ty)),
                Op::Review { .. } => "AwaitReview".to_string(),
                Op::All { .. } => "AwaitAll".to_string(),
                Op::Race { .. } => "AwaitRace".to_string(),
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let name = if *n == 1 { base } else { format!("{base}{n}") };
            variants.push(Ident::new(&name, Span::call_site()));
        }
        Generator {
            item,
            sig,
            lowered,
            saved,
            name,
            version,
            state,
            variants,
            awaits,
        }
    }

    fn binding(&self, id: BindingId) -> &Binding {
        &self.lowered.bindings.all[id]
    }

    fn field_ident(&self, id: BindingId) -> Ident {
        Ident::new(&self.binding(id).ident.to_string(), Span::call_site())
    }

    fn field_type(&self, id: BindingId) -> TokenStream {
        match &self.binding(id).ty {
            TypeInfo::Known(t) => quote!(#t),
            // Already reported; `()` keeps the rest of the expansion type-checking quietly.
            _ => quote!(()),
        }
    }

    fn field_doc(&self, id: BindingId) -> String {
        let b = self.binding(id);
        if !b.synthetic && b.ident != b.user_name {
            format!(
                " The variable `{0}` of an inner block, which shadows an outer `{0}`.",
                b.user_name
            )
        } else if !b.synthetic {
            format!(" The variable `{}`.", b.user_name)
        } else if b.user_name.starts_with("__weft_iter") {
            " The position of a `for` loop.".to_string()
        } else {
            " The result of an earlier durable await in the same expression.".to_string()
        }
    }

    fn saved_sorted(&self, k: AwaitId) -> Vec<BindingId> {
        self.saved[k].iter().copied().collect()
    }

    /// The state enum.
    pub(crate) fn state_enum(&self) -> TokenStream {
        let vis = &self.item.vis;
        let state = &self.state;
        let start_fields = self.lowered.params.iter().map(|id| {
            let f = self.field_ident(*id);
            let t = self.field_type(*id);
            let doc = self.field_doc(*id);
            quote!(#[doc = #doc] #f: #t)
        });
        let variants = (0..self.lowered.awaits).map(|k| {
            let v = &self.variants[k];
            let fields = self.saved_sorted(k).into_iter().map(|id| {
                let f = self.field_ident(id);
                let t = self.field_type(id);
                let doc = self.field_doc(id);
                quote!(#[doc = #doc] #f: #t)
            });
            let doc = format!(
                " Suspended at durable await #{}: {}.",
                k + 1,
                self.describe_await(k)
            );
            quote!(#[doc = #doc] #v { #(#fields,)* })
        });
        let doc = format!(
            " The persisted state of the `{}` workflow: one variant per resume point, carrying the variables live there.",
            self.item.sig.ident
        );
        quote! {
            #[doc = #doc]
            #[derive(::weft_runtime::__private::serde::Serialize, ::weft_runtime::__private::serde::Deserialize)]
            #[serde(crate = "::weft_runtime::__private::serde")]
            #vis enum #state {
                /// Not started yet: the workflow's inputs.
                Start { #(#start_fields,)* },
                #(#variants,)*
            }
        }
    }

    fn describe_await(&self, k: AwaitId) -> String {
        let compact = |tokens: TokenStream| tokens.to_string().replace(' ', "");
        match &self.awaits[&k].op {
            Op::Run { activity, .. } => format!("`ctx.run({})`", compact(quote!(#activity))),
            Op::Sleep { .. } => "`ctx.sleep(..)`".to_string(),
            Op::Signal { ty } => format!("`ctx.wait_for_signal::<{}>()`", compact(quote!(#ty))),
            Op::Child { workflow, .. } => format!("`ctx.child({})`", compact(quote!(#workflow))),
            Op::Compensate { .. } => "`ctx.compensate(..)`".to_string(),
            Op::Update { ty } => format!("`ctx.wait_for_update::<{}>()`", compact(quote!(#ty))),
            Op::Review { .. } => "`ctx.review(..)`".to_string(),
            // The group's operations are part of the shape: a changed branch is a changed state.
            Op::All { group } => format!("`ctx.all({})`", compact(quote!(#group))),
            Op::Race { group } => format!("`ctx.race({})`", compact(quote!(#group))),
        }
    }

    /// The shape string hashed into the fingerprint: variants, fields and their types, awaits.
    pub(crate) fn shape(&self) -> String {
        let mut s = format!("weft-state-v1|{}|", self.name);
        s.push_str("Start{");
        for id in &self.lowered.params {
            s.push_str(&format!(
                "{}:{};",
                self.field_ident(*id),
                self.field_type(*id)
            ));
        }
        s.push('}');
        for k in 0..self.lowered.awaits {
            s.push_str(&format!(
                "|{}={}{{",
                self.variants[k],
                self.describe_await(k)
            ));
            for id in self.saved_sorted(k) {
                s.push_str(&format!(
                    "{}:{};",
                    self.field_ident(id),
                    self.field_type(id)
                ));
            }
            s.push('}');
        }
        s
    }

    /// The `Workflow` impl.
    pub(crate) fn workflow_impl(&self) -> TokenStream {
        let marker = &self.item.sig.ident;
        let state = &self.state;
        let output = &self.sig.output;
        let error = &self.sig.error;
        let name = &self.name;
        let version = self.version;
        let fingerprint = fnv1a(self.shape().as_bytes());
        let ctx = &self.sig.ctx;
        let ctx_ty = &self.sig.ctx_ty;
        let param_fields: Vec<Ident> = self
            .lowered
            .params
            .iter()
            .map(|id| self.field_ident(*id))
            .collect();
        let param_types: Vec<&Type> = self.sig.params.iter().map(|(_, _, t)| t).collect();
        let (input_ty, start_body) = match param_fields.len() {
            0 => (quote!(()), quote!(let () = input; #state::Start {})),
            1 => {
                let f = &param_fields[0];
                let t = param_types[0];
                (quote!(#t), quote!(#state::Start { #f: input }))
            }
            _ => (
                quote!((#(#param_types,)*)),
                quote!(let (#(#param_fields,)*) = input; #state::Start { #(#param_fields,)* }),
            ),
        };
        let arms = self.step_arms();
        let state_names = std::iter::once(quote!(#state::Start { .. } => "Start")).chain(
            self.variants.iter().map(|v| {
                let s = v.to_string();
                quote!(#state::#v { .. } => #s)
            }),
        );
        let mut seen = BTreeSet::new();
        let activities: Vec<TokenStream> = (0..self.lowered.awaits)
            .flat_map(|k| match &self.awaits[&k].op {
                Op::Run { activity, .. } => vec![activity.clone()],
                Op::All { group } | Op::Race { group } => scan::group_activities(group, ctx),
                _ => Vec::new(),
            })
            .chain(self.lowered.compensations.iter().cloned())
            .filter(|activity| seen.insert(quote!(#activity).to_string()))
            .map(|activity| quote_spanned!(activity_span(&activity)=> set.add(#activity);))
            .collect();
        let interface = super::interface::interface_fn(
            (0..self.lowered.awaits).map(|k| &self.awaits[&k].op),
            ctx,
            &input_ty,
            output,
            error,
        );
        let body_fn = Ident::new("__weft_body", Span::mixed_site());
        let st = Ident::new("__weft_state", Span::mixed_site());
        let fp_lit = syn::LitInt::new(&format!("{fingerprint:#018x}"), Span::call_site());
        quote! {
            impl ::weft_runtime::__private::Workflow for #marker {
                type Input = #input_ty;
                type Output = #output;
                type Error = #error;
                type State = #state;
                const NAME: &'static str = #name;
                const VERSION: u32 = #version;
                const FINGERPRINT: u64 = #fp_lit;

                fn start(input: Self::Input) -> #state {
                    #start_body
                }

                fn step(
                    ctx: &mut ::weft_runtime::__private::WorkflowContext,
                    state: #state,
                    resume: ::weft_runtime::__private::Resume,
                ) -> ::core::result::Result<::weft_runtime::__private::Transition<Self>, ::weft_runtime::__private::StepError> {
                    #[allow(unused_mut, unused_variables, unused_braces, unused_labels, unreachable_code, clippy::all, clippy::pedantic)]
                    fn #body_fn(
                        #ctx: #ctx_ty,
                        #st: #state,
                        __weft_resume: ::weft_runtime::__private::Resume,
                    ) -> ::core::result::Result<::weft_runtime::__private::Next<#state, #output>, #error> {
                        match #st {
                            #(#arms)*
                        }
                    }
                    ::weft_runtime::__private::finish::<Self>(#body_fn(ctx, state, resume))
                }

                fn state_name(state: &#state) -> &'static str {
                    match state {
                        #(#state_names,)*
                    }
                }

                fn activities(set: &mut ::weft_runtime::__private::ActivitySet) {
                    #(#activities)*
                }

                #interface
            }

            impl ::core::fmt::Debug for #state {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::weft_runtime::__private::debug_state(self, f)
                }
            }
        }
    }

    fn step_arms(&self) -> Vec<TokenStream> {
        let state = &self.state;
        let output = &self.sig.output;
        let mut arms = Vec::new();
        let start_binds = self.lowered.params.iter().map(|id| self.bind_field(*id));
        let body = self.gen_seq(&self.lowered.body, &LoopMap::default());
        arms.push(quote! {
            #state::Start { #(#start_binds,)* } => {
                match ::weft_runtime::__private::resume_start::<#state, #output>("Start", __weft_resume) {
                    ::weft_runtime::__private::Resumed::Value(()) => {}
                    ::weft_runtime::__private::Resumed::Exit(next) => return ::core::result::Result::Ok(next),
                }
                #body
            }
        });
        for k in 0..self.lowered.awaits {
            let v = &self.variants[k];
            let binds = self
                .saved_sorted(k)
                .into_iter()
                .map(|id| self.bind_field(id));
            let redeclare = self.awaits[&k]
                .in_scope
                .iter()
                .filter(|id| self.binding(**id).assigned && !self.saved[k].contains(id))
                .map(|id| {
                    let b = self.binding(*id);
                    let ident = &b.ident;
                    match &b.ty {
                        TypeInfo::Known(t) => quote!(let mut #ident: #t;),
                        _ => quote!(let mut #ident;),
                    }
                });
            let (cont, _) = self
                .gen_cont(&self.lowered.body, k, &LoopMap::default())
                .expect("every await is in the body");
            arms.push(quote! {
                #state::#v { #(#binds,)* } => { #(#redeclare)* #cont }
            });
        }
        arms
    }

    fn bind_field(&self, id: BindingId) -> TokenStream {
        let f = self.field_ident(id);
        let b = self.binding(id);
        let ident = &b.ident;
        let shorthand = !b.synthetic;
        match (b.mutable, shorthand) {
            (true, true) => quote!(mut #ident),
            (true, false) => quote!(#f: mut #ident),
            (false, true) => quote!(#ident),
            (false, false) => quote!(#f: #ident),
        }
    }

    fn gen_seq(&self, seq: &[Node], map: &LoopMap) -> TokenStream {
        let mut ts = TokenStream::new();
        for node in seq {
            ts.extend(self.gen_node(node, map));
            if matches!(
                node,
                Node::Await(_) | Node::Break(_) | Node::Continue(_) | Node::Return { .. }
            ) {
                break;
            }
        }
        ts
    }

    fn gen_node(&self, node: &Node, map: &LoopMap) -> TokenStream {
        match node {
            Node::Plain { stmt, .. } => {
                let mut stmt = stmt.clone();
                let mut rewriter = ExitRewriter::new(self, map);
                rewriter.visit_stmt_mut(&mut stmt);
                quote!(#stmt)
            }
            Node::Await(a) => self.gen_suspend(a),
            Node::If {
                cond, then, els, ..
            } => {
                let then = self.gen_seq(then, map);
                let mut cond = cond.clone();
                ExitRewriter::new(self, map).visit_expr_mut(&mut cond);
                match els {
                    Some(els) => {
                        let els = self.gen_seq(els, map);
                        quote!(if #cond { #then } else { #els })
                    }
                    None => quote!(if #cond { #then }),
                }
            }
            Node::Match {
                scrutinee, arms, ..
            } => {
                let mut scrutinee = scrutinee.clone();
                ExitRewriter::new(self, map).visit_expr_mut(&mut scrutinee);
                let arms = arms.iter().map(|arm| {
                    let pat = &arm.pat;
                    let body = self.gen_seq(&arm.body, map);
                    quote!(#pat => { #body })
                });
                quote!(match #scrutinee { #(#arms)* })
            }
            Node::Loop { id, body } => {
                let label = &self.lowered.loops[*id].label;
                let inner = map.with(*id, quote!(break #label;), quote!(continue #label;));
                let body = self.gen_seq(body, &inner);
                quote!(#label: loop { #body })
            }
            Node::Block(seq) => {
                let body = self.gen_seq(seq, map);
                quote!({ #body })
            }
            Node::Break(id) => map.get(*id).map(|(_, b, _)| b.clone()).unwrap_or_default(),
            Node::Continue(id) => map.get(*id).map(|(_, _, c)| c.clone()).unwrap_or_default(),
            Node::Return { expr, .. } => {
                let mut expr = expr.clone();
                ExitRewriter::new(self, map).visit_expr_mut(&mut expr);
                return_tokens(&expr)
            }
            Node::Assign { target, expr, .. } => {
                let mut expr = expr.clone();
                ExitRewriter::new(self, map).visit_expr_mut(&mut expr);
                let ident = &self.binding(*target).ident;
                quote!(#ident = #expr;)
            }
        }
    }

    fn gen_suspend(&self, a: &Await) -> TokenStream {
        let state = &self.state;
        let v = &self.variants[a.id];
        let fields = self.saved_sorted(a.id).into_iter().map(|id| {
            let f = self.field_ident(id);
            let b = self.binding(id);
            let ident = &b.ident;
            if b.synthetic {
                quote!(#f: #ident)
            } else {
                quote!(#ident)
            }
        });
        // The user's own `ctx.method(..)` call builds the command, so argument type errors are
        // reported against `WorkflowContext`'s documented methods.
        let ctx = &self.sig.ctx;
        let method = &a.method;
        let call = match &a.op {
            Op::Run { activity, input } => quote!(#ctx.#method(#activity, #input)),
            Op::Sleep { duration } => quote!(#ctx.#method(#duration)),
            Op::Signal { ty } => quote!(#ctx.#method::<#ty>()),
            Op::Child {
                workflow,
                input,
                policy: None,
            } => quote!(#ctx.#method(#workflow, #input)),
            Op::Child {
                workflow,
                input,
                policy: Some(policy),
            } => {
                quote!(#ctx.#method(#workflow, #input, #policy))
            }
            Op::Compensate { step } => quote!(#ctx.#method(#step)),
            Op::Update { ty } => quote!(#ctx.#method::<#ty>()),
            Op::Review { request } => quote!(#ctx.#method(#request)),
            Op::All { group } | Op::Race { group } => quote!(#ctx.#method(#group)),
        };
        // A group's value type is inferred from its branches: naming it here makes a wrong
        // inference a type error at the user's call instead of a value decoded as another type.
        let value_ty = match &a.op {
            Op::All { .. } | Op::Race { .. } => match types::await_type(&a.op, false, ctx) {
                TypeInfo::Known(ty) => quote!(::<#ty>),
                _ => TokenStream::new(),
            },
            _ => TokenStream::new(),
        };
        let command = quote! {
            match ::weft_runtime::__private::command #value_ty (#call) {
                ::core::result::Result::Ok(command) => command,
                ::core::result::Result::Err(e) => return ::core::result::Result::Ok(::weft_runtime::__private::Next::Fault(e)),
            }
        };
        quote! {
            {
                let command = #command;
                return ::core::result::Result::Ok(::weft_runtime::__private::Next::Suspend(
                    #state::#v { #(#fields,)* },
                    command,
                ));
            }
        }
    }

    fn gen_resume(&self, a: &Await) -> TokenStream {
        let state = &self.state;
        let output = &self.sig.output;
        let vname = self.variants[a.id].to_string();
        let call = match &a.op {
            Op::Run { activity, .. } => {
                let act = quote_spanned!(activity_span(activity)=> &#activity);
                quote!(::weft_runtime::__private::resume_activity::<_, #state, #output>(#act, #vname, __weft_resume))
            }
            Op::Sleep { .. } => {
                quote!(::weft_runtime::__private::resume_timer::<#state, #output>(#vname, __weft_resume))
            }
            Op::Signal { ty } => {
                quote!(::weft_runtime::__private::resume_signal::<#ty, #state, #output>(#vname, __weft_resume))
            }
            Op::Child { workflow, .. } => {
                let wf = quote_spanned!(activity_span(workflow)=> &#workflow);
                quote!(::weft_runtime::__private::resume_child::<_, #state, #output>(#wf, #vname, __weft_resume))
            }
            Op::Compensate { .. } => {
                quote!(::weft_runtime::__private::resume_compensation::<#state, #output>(#vname, __weft_resume))
            }
            Op::Update { ty } => {
                quote!(::weft_runtime::__private::resume_update::<#ty, #state, #output>(#vname, __weft_resume))
            }
            Op::Review { .. } => {
                quote!(::weft_runtime::__private::resume_review::<#state, #output>(#vname, __weft_resume))
            }
            Op::All { .. } | Op::Race { .. } => {
                match types::await_type(&a.op, false, &self.sig.ctx) {
                    TypeInfo::Known(ty) => {
                        quote!(::weft_runtime::__private::resume_group::<#ty, #state, #output>(#vname, __weft_resume))
                    }
                    // A `Vec` group: its value's type comes from how the user binds it.
                    _ => {
                        quote!(::weft_runtime::__private::resume_group::<_, #state, #output>(#vname, __weft_resume))
                    }
                }
            }
        };
        let value = Ident::new("__weft_resumed", Span::mixed_site());
        let value_expr = if a.try_ {
            quote_spanned!(a.span=> #value?)
        } else {
            quote!(#value)
        };
        let bind = match &a.bind {
            AwaitBind::Discard if a.try_ => quote!(#value_expr;),
            AwaitBind::Discard => quote!(let _ = #value_expr;),
            AwaitBind::Let {
                pat, ty: Some(ty), ..
            } => quote!(let #pat: #ty = #value_expr;),
            AwaitBind::Let { pat, ty: None, .. } => quote!(let #pat = #value_expr;),
            AwaitBind::Assign { target } => {
                let ident = &self.binding(*target).ident;
                quote!(#ident = #value_expr;)
            }
        };
        quote! {
            let #value = match #call {
                ::weft_runtime::__private::Resumed::Value(value) => value,
                ::weft_runtime::__private::Resumed::Exit(next) => return ::core::result::Result::Ok(next),
            };
            #bind
        }
    }

    /// The code that continues from await `k`, if `k` is inside `seq`, and whether control can
    /// run off its end. Code that cannot be reached from `k` is not emitted: it may use
    /// variables the resume point does not carry.
    fn gen_cont(&self, seq: &[Node], k: AwaitId, map: &LoopMap) -> Option<(TokenStream, bool)> {
        for (i, node) in seq.iter().enumerate() {
            if !contains_await(node, k) {
                continue;
            }
            let (head, completes) = match node {
                Node::Await(a) => (self.gen_resume(a), true),
                Node::If { then, els, .. } => {
                    let (inner, completes) = if contains_seq(then, k) {
                        self.gen_cont(then, k, map)?
                    } else {
                        self.gen_cont(els.as_ref()?, k, map)?
                    };
                    (quote!({ #inner }), completes)
                }
                Node::Match { arms, .. } => {
                    let arm = arms.iter().find(|a| contains_seq(&a.body, k))?;
                    let (inner, completes) = self.gen_cont(&arm.body, k, map)?;
                    (quote!({ #inner }), completes)
                }
                Node::Block(inner) => {
                    let (inner, completes) = self.gen_cont(inner, k, map)?;
                    (quote!({ #inner }), completes)
                }
                Node::Loop { id, body } => {
                    let exit = Lifetime::new(&format!("'__weft_exit{id}"), Span::mixed_site());
                    let next = Lifetime::new(&format!("'__weft_next{id}"), Span::mixed_site());
                    let partial = map.with(*id, quote!(break #exit;), quote!(break #next;));
                    let (inner, inner_completes) = self.gen_cont(body, k, &partial)?;
                    // The whole loop follows only if the rest of this iteration can reach it.
                    let full = if inner_completes || continues_in(body, *id) {
                        self.gen_node(node, map)
                    } else {
                        TokenStream::new()
                    };
                    // The loop ends only through a `break` out of it: from the rest of this
                    // iteration, or from a later one.
                    let completes = breaks_after(body, k, *id)
                        || (!full.is_empty() && breaks_out_of(body, *id));
                    (quote!(#exit: { #next: { #inner } #full }), completes)
                }
                _ => return None,
            };
            if !completes {
                return Some((head, false));
            }
            let rest = &seq[i + 1..];
            let tail = self.gen_seq(rest, map);
            return Some((quote!(#head #tail), !always_exits(rest)));
        }
        None
    }

    /// The marker struct.
    pub(crate) fn marker(item: &ItemFn) -> TokenStream {
        marker_struct(item)
    }
}

/// The unit struct that names the workflow in both namespaces.
pub(crate) fn marker_struct(item: &ItemFn) -> TokenStream {
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let docs = item.attrs.iter().filter(|a| a.path().is_ident("doc"));
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #ident;
    }
}

fn return_tokens(expr: &Expr) -> TokenStream {
    quote! {
        return ::core::result::Result::map(#expr, ::weft_runtime::__private::Next::Return);
    }
}

fn activity_span(path: &syn::Path) -> Span {
    path.segments
        .last()
        .map_or(Span::call_site(), |s| s.ident.span())
}

fn collect_awaits<'a>(seq: &'a [Node], out: &mut HashMap<AwaitId, &'a Await>) {
    for node in seq {
        match node {
            Node::Await(a) => {
                out.insert(a.id, a);
            }
            Node::If { then, els, .. } => {
                collect_awaits(then, out);
                if let Some(e) = els {
                    collect_awaits(e, out);
                }
            }
            Node::Match { arms, .. } => arms.iter().for_each(|a| collect_awaits(&a.body, out)),
            Node::Loop { body, .. } | Node::Block(body) => collect_awaits(body, out),
            _ => {}
        }
    }
}

/// Whether running `seq` never reaches its end: it always suspends, returns, breaks or continues.
fn always_exits(seq: &[Node]) -> bool {
    seq.iter().any(|node| match node {
        Node::Await(_) | Node::Return { .. } | Node::Break(_) | Node::Continue(_) => true,
        Node::If {
            then,
            els: Some(els),
            ..
        } => always_exits(then) && always_exits(els),
        Node::Match { arms, .. } => !arms.is_empty() && arms.iter().all(|a| always_exits(&a.body)),
        Node::Block(inner) => always_exits(inner),
        Node::Loop { id, body } => !breaks_out_of(body, *id),
        _ => false,
    })
}

/// Whether, continuing from await `k` inside `seq`, control can break out of loop `id`.
/// Errs on the side of yes: emitting code that cannot run is harmless, skipping code is not.
fn breaks_after(seq: &[Node], k: AwaitId, id: LoopId) -> bool {
    for (i, node) in seq.iter().enumerate() {
        if !contains_await(node, k) {
            continue;
        }
        let inside = match node {
            Node::If { then, els, .. } => {
                if contains_seq(then, k) {
                    breaks_after(then, k, id)
                } else {
                    els.as_ref().is_some_and(|e| breaks_after(e, k, id))
                }
            }
            Node::Match { arms, .. } => arms
                .iter()
                .find(|a| contains_seq(&a.body, k))
                .is_some_and(|a| breaks_after(&a.body, k, id)),
            Node::Block(inner) => breaks_after(inner, k, id),
            // An inner loop runs its whole body again after this iteration.
            Node::Loop { body, .. } => breaks_after(body, k, id) || breaks_out_of(body, id),
            _ => false,
        };
        return inside || breaks_out_of(&seq[i + 1..], id);
    }
    false
}

/// Whether anything in `seq` continues loop `id`.
fn continues_in(seq: &[Node], id: LoopId) -> bool {
    seq.iter().any(|node| match node {
        Node::Continue(l) => *l == id,
        Node::Plain { exits, .. } => exits.continues.contains(&id),
        Node::If { then, els, .. } => {
            continues_in(then, id) || els.as_ref().is_some_and(|e| continues_in(e, id))
        }
        Node::Match { arms, .. } => arms.iter().any(|a| continues_in(&a.body, id)),
        Node::Block(inner) | Node::Loop { body: inner, .. } => continues_in(inner, id),
        _ => false,
    })
}

/// Whether anything in `seq` breaks out of loop `id`.
fn breaks_out_of(seq: &[Node], id: LoopId) -> bool {
    seq.iter().any(|node| match node {
        Node::Break(l) => *l == id,
        Node::Plain { exits, .. } => exits.breaks.contains(&id),
        Node::If { then, els, .. } => {
            breaks_out_of(then, id) || els.as_ref().is_some_and(|e| breaks_out_of(e, id))
        }
        Node::Match { arms, .. } => arms.iter().any(|a| breaks_out_of(&a.body, id)),
        Node::Block(inner) | Node::Loop { body: inner, .. } => breaks_out_of(inner, id),
        _ => false,
    })
}

fn contains_seq(seq: &[Node], k: AwaitId) -> bool {
    seq.iter().any(|n| contains_await(n, k))
}

fn contains_await(node: &Node, k: AwaitId) -> bool {
    match node {
        Node::Await(a) => a.id == k,
        Node::If { then, els, .. } => {
            contains_seq(then, k) || els.as_ref().is_some_and(|e| contains_seq(e, k))
        }
        Node::Match { arms, .. } => arms.iter().any(|a| contains_seq(&a.body, k)),
        Node::Loop { body, .. } | Node::Block(body) => contains_seq(body, k),
        _ => false,
    }
}

/// `snake_case` to `PascalCase`.
pub(crate) fn pascal(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

fn type_base_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// FNV-1a, the same function as `weft_runtime::__private::fnv1a`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Rewrites `break`/`continue` that leave suspending loops, and `return`, in plain code.
struct ExitRewriter<'g, 'a> {
    gen_: &'g Generator<'a>,
    map: &'g LoopMap,
    inner_loops: Vec<Option<String>>,
    nested_fn: usize,
}

impl<'g, 'a> ExitRewriter<'g, 'a> {
    fn new(gen_: &'g Generator<'a>, map: &'g LoopMap) -> Self {
        ExitRewriter {
            gen_,
            map,
            inner_loops: Vec::new(),
            nested_fn: 0,
        }
    }

    fn target(&self, label: Option<&Lifetime>) -> Option<LoopId> {
        if self.nested_fn > 0 {
            return None;
        }
        match label {
            Some(l) => {
                let name = l.ident.to_string();
                if self
                    .inner_loops
                    .iter()
                    .any(|x| x.as_deref() == Some(name.as_str()))
                {
                    return None;
                }
                // A generated loop label (`for` lowering) or a user label of a suspending loop.
                self.map
                    .stack
                    .iter()
                    .rev()
                    .map(|(id, _, _)| *id)
                    .find(|id| {
                        let info = &self.gen_.lowered.loops[*id];
                        info.label.ident == l.ident
                            || info.user_label.as_ref().is_some_and(|u| u.ident == l.ident)
                    })
            }
            None if self.inner_loops.is_empty() => self.map.stack.last().map(|(id, _, _)| *id),
            None => None,
        }
    }
}

impl VisitMut for ExitRewriter<'_, '_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Closure(c) => {
                self.nested_fn += 1;
                self.visit_expr_mut(&mut c.body);
                self.nested_fn -= 1;
            }
            Expr::Async(a) => {
                self.nested_fn += 1;
                self.visit_block_mut(&mut a.block);
                self.nested_fn -= 1;
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.inner_loops
                    .push(f.label.as_ref().map(|l| l.name.ident.to_string()));
                self.visit_block_mut(&mut f.body);
                self.inner_loops.pop();
            }
            Expr::While(w) => {
                self.inner_loops
                    .push(w.label.as_ref().map(|l| l.name.ident.to_string()));
                self.visit_expr_mut(&mut w.cond);
                self.visit_block_mut(&mut w.body);
                self.inner_loops.pop();
            }
            Expr::Loop(l) => {
                self.inner_loops
                    .push(l.label.as_ref().map(|l| l.name.ident.to_string()));
                self.visit_block_mut(&mut l.body);
                self.inner_loops.pop();
            }
            Expr::Block(b) if b.label.is_some() => {
                self.inner_loops
                    .push(b.label.as_ref().map(|l| l.name.ident.to_string()));
                self.visit_block_mut(&mut b.block);
                self.inner_loops.pop();
            }
            Expr::Break(b) => {
                if let Some(id) = self.target(b.label.as_ref())
                    && let Some((_, brk, _)) = self.map.get(id)
                {
                    *e = syn::parse2(quote!({ #brk })).expect("a generated break parses");
                    return;
                }
                syn::visit_mut::visit_expr_mut(self, e);
            }
            Expr::Continue(c) => {
                if let Some(id) = self.target(c.label.as_ref())
                    && let Some((_, _, cont)) = self.map.get(id)
                {
                    *e = syn::parse2(quote!({ #cont })).expect("a generated continue parses");
                }
            }
            Expr::Return(r) if self.nested_fn == 0 => {
                let value = r.expr.take().map_or_else(|| syn::parse_quote!(()), |v| *v);
                let mut value = value;
                self.visit_expr_mut(&mut value);
                *e = syn::parse_quote!(return ::core::result::Result::map(#value, ::weft_runtime::__private::Next::Return));
            }
            _ => syn::visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
