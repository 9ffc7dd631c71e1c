//! Writes `Workflow::interface`: what the workflow accepts and returns for calls by name.
//!
//! In: the durable operations of the body (a group's branches included) and the signature's
//! types. Out: the `fn interface` item, recording each signal and update type the workflow waits
//! for, once, and the JSON Schema probes of the input, output and error (see
//! `weft_runtime::interface` for how a probe picks an impl without a trait bound; the message
//! types carry their own schemas, from their derives).

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit::Visit;
use syn::{Expr, GenericArgument, Ident, Type};

use super::ir::Op;

/// A message type the workflow waits for.
enum Message {
    Signal(Type),
    Update(Type),
}

/// The `ctx.wait_for_signal::<T>()` and `ctx.wait_for_update::<T>()` calls inside a group
/// argument, in source order.
fn group_messages(group: &Expr, ctx: &Ident) -> Vec<Message> {
    struct Collect<'a> {
        ctx: &'a Ident,
        out: Vec<Message>,
    }
    impl<'ast> Visit<'ast> for Collect<'_> {
        fn visit_expr_method_call(&mut self, mc: &'ast syn::ExprMethodCall) {
            let on_ctx = matches!(&*mc.receiver, Expr::Path(p) if p.qself.is_none() && p.path.is_ident(self.ctx));
            let ty = mc.turbofish.as_ref().and_then(|tf| match tf.args.first() {
                Some(GenericArgument::Type(t)) if tf.args.len() == 1 => Some(t.clone()),
                _ => None,
            });
            if on_ctx && let Some(ty) = ty {
                if mc.method == "wait_for_signal" {
                    self.out.push(Message::Signal(ty));
                } else if mc.method == "wait_for_update" {
                    self.out.push(Message::Update(ty));
                }
            }
            syn::visit::visit_expr_method_call(self, mc);
        }
    }
    let mut collect = Collect {
        ctx,
        out: Vec::new(),
    };
    collect.visit_expr(group);
    collect.out
}

/// The `fn interface` of the `Workflow` impl, for the body's durable operations `ops`.
pub(crate) fn interface_fn<'a>(
    ops: impl Iterator<Item = &'a Op>,
    ctx: &Ident,
    input: &TokenStream,
    output: &Type,
    error: &Type,
) -> TokenStream {
    let probe = |ty: &dyn quote::ToTokens| quote!((&::weft_runtime::__private::SchemaProbe::<#ty>::new()).schema_fn());
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    for message in ops.flat_map(|op| match op {
        Op::Signal { ty } => vec![Message::Signal((**ty).clone())],
        Op::Update { ty } => vec![Message::Update((**ty).clone())],
        Op::All { group } | Op::Race { group } => group_messages(group, ctx),
        _ => Vec::new(),
    }) {
        let (kind, ty) = match &message {
            Message::Signal(ty) => ("signal", ty),
            Message::Update(ty) => ("update", ty),
        };
        if !seen.insert(format!("{kind} {}", quote!(#ty))) {
            continue;
        }
        let message_probe = quote!((&::weft_runtime::__private::MessageProbe::<#ty>::new()));
        records.push(match message {
            Message::Signal(_) => quote!(#message_probe.add_signal(interface);),
            Message::Update(_) => quote!(#message_probe.add_update(interface);),
        });
    }
    let (input, output, error) = (probe(input), probe(output), probe(error));
    quote! {
        fn interface(interface: &mut ::weft_runtime::__private::Interface) {
            #[allow(unused_imports)]
            use ::weft_runtime::__private::{
                NotAMessage as _, ViaJsonSchema as _, ViaSignal as _, ViaUpdate as _,
                WithoutJsonSchema as _,
            };
            interface.schemas(#input, #output, #error);
            #(#records)*
        }
    }
}
