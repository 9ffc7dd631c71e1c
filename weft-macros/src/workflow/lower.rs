//! Lowers the body to structured nodes split at durable awaits, resolving names as it goes.
//!
//! In: the body's statements. Out: [`Lowered`]: nodes, bindings with their types, loops.
//! `while`, `while let`, `for`, `if let` and `else if` become `loop`/`match`/`if`; durable awaits
//! inside expressions are hoisted into their own statements, in evaluation order; a binding that
//! shadows a binding of an enclosing scope is renamed, so every live variable stays reachable.

use std::collections::{BTreeSet, HashSet};

use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, Ident, Lifetime, Pat, Stmt, parse_quote};

use super::ir::*;
use super::resolve::{self, IrLoop, Resolved, Visible};
use super::scan;
use super::types;
use crate::diagnostics::Diagnostics;

/// What the value of the block being lowered is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tail {
    /// Nothing: a statement.
    None,
    /// The workflow's result.
    Return,
    /// The value of a `let` whose initializer suspends.
    Assign(BindingId),
}

pub(crate) struct Lowerer<'a> {
    ctx: Ident,
    diags: &'a mut Diagnostics,
    bindings: Bindings,
    loops: Vec<LoopInfo>,
    awaits: usize,
    scopes: Vec<Vec<(String, BindingId)>>,
    loop_stack: Vec<LoopId>,
    used_names: HashSet<String>,
    temps: usize,
    compensations: Vec<syn::Path>,
}

/// Lowers a workflow body. `params` are the inputs after the context: `(name, mutable, type)`.
pub(crate) fn lower(
    ctx: &Ident,
    params: &[(Ident, bool, syn::Type)],
    body: &Block,
    diags: &mut Diagnostics,
) -> Lowered {
    let mut names = NameCollector::default();
    names.visit_block(body);
    let mut l = Lowerer {
        ctx: ctx.clone(),
        diags,
        bindings: Bindings::default(),
        loops: Vec::new(),
        awaits: 0,
        scopes: vec![Vec::new()],
        loop_stack: Vec::new(),
        used_names: names.0,
        temps: 0,
        compensations: Vec::new(),
    };
    let mut param_ids = Vec::new();
    for (ident, mutable, ty) in params {
        let (id, _) = l.declare(ident, *mutable, types::from_annotation(ty), false);
        param_ids.push(id);
    }
    let seq = l.lower_stmts(&body.stmts, Tail::Return);
    if !ends_in_return(&seq) {
        let span = body
            .stmts
            .last()
            .map_or(body.brace_token.span.close(), |s| s.span());
        l.diags.error_at(
            span,
            "a workflow body must end with its result: the last expression is what the workflow completes with; end it with `Ok(value)`",
        );
    }
    Lowered {
        body: seq,
        bindings: l.bindings,
        loops: l.loops,
        awaits: l.awaits,
        params: param_ids,
        compensations: l.compensations,
    }
}

fn ends_in_return(seq: &Seq) -> bool {
    match seq.last() {
        Some(Node::Return { .. }) | Some(Node::Loop { .. }) => true,
        Some(Node::If {
            then,
            els: Some(els),
            ..
        }) => ends_in_return(then) && ends_in_return(els),
        Some(Node::Match { arms, .. }) => arms.iter().all(|a| ends_in_return(&a.body)),
        Some(Node::Block(inner)) => ends_in_return(inner),
        Some(Node::Plain { stmt, .. }) => plain_diverges(stmt),
        _ => false,
    }
}

fn plain_diverges(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Expr(Expr::Return(_), _) | Stmt::Expr(Expr::Loop(_), _) => true,
        Stmt::Macro(m) => {
            m.mac.path.is_ident("panic")
                || m.mac.path.is_ident("unreachable")
                || m.mac.path.is_ident("todo")
                || m.mac.path.is_ident("unimplemented")
        }
        Stmt::Expr(Expr::Macro(m), _) => {
            m.mac.path.is_ident("panic")
                || m.mac.path.is_ident("unreachable")
                || m.mac.path.is_ident("todo")
                || m.mac.path.is_ident("unimplemented")
        }
        _ => false,
    }
}

/// Where a pattern stands, which decides the form of its type annotation.
enum At {
    Let,
    LetElse,
    /// A pattern that takes no annotation, with the construct's keyword and the variable its
    /// value is taken from.
    Pattern(&'static str, Option<(String, String)>),
}

#[derive(Default)]
struct NameCollector(HashSet<String>);

impl<'ast> Visit<'ast> for NameCollector {
    fn visit_ident(&mut self, i: &'ast Ident) {
        self.0.insert(i.to_string());
    }
}

impl Lowerer<'_> {
    fn visible(&self) -> Visible {
        let mut v = Visible::new();
        for scope in &self.scopes {
            for (name, id) in scope {
                v.insert(name.clone(), *id);
            }
        }
        v
    }

    fn ir_loops(&self) -> Vec<IrLoop> {
        self.loop_stack
            .iter()
            .map(|id| {
                (
                    *id,
                    self.loops[*id]
                        .user_label
                        .as_ref()
                        .map(|l| l.ident.to_string()),
                )
            })
            .collect()
    }

    fn var_type(&self, name: &str) -> Option<TypeInfo> {
        self.visible()
            .get(name)
            .map(|id| self.bindings.all[*id].ty.clone())
    }

    /// The variable whose item a scrutinee takes (`queue` in `queue.pop_front()`), when its
    /// type is not known, and the collection its method suggests.
    fn item_source(&self, scrutinee: &Expr) -> Option<(String, String)> {
        let Expr::MethodCall(mc) = scrutinee else {
            return None;
        };
        let (collection, mut_) = match mc.method.to_string().as_str() {
            "pop_front" | "pop_back" => ("VecDeque", "mut "),
            "pop" | "remove" | "swap_remove" => ("Vec", "mut "),
            "front" | "back" => ("VecDeque", ""),
            "first" | "last" | "get" => ("Vec", ""),
            _ => return None,
        };
        let Expr::Path(p) = &*mc.receiver else {
            return None;
        };
        let name = p.path.get_ident()?.to_string();
        match self.var_type(&name)? {
            TypeInfo::Unknown => {
                let annotated = format!("let {mut_}{name}: {collection}<Type> = ..");
                Some((name, annotated))
            }
            _ => None,
        }
    }

    /// Declares a binding in the current scope; renames it if it shadows an outer scope's.
    fn declare(
        &mut self,
        ident: &Ident,
        mutable: bool,
        ty: TypeInfo,
        synthetic: bool,
    ) -> (BindingId, Ident) {
        let name = ident.to_string();
        let outer = &self.scopes[..self.scopes.len() - 1];
        let shadows_outer = outer.iter().any(|s| s.iter().any(|(n, _)| *n == name));
        let final_ident = if shadows_outer {
            let mut n = 1;
            loop {
                let candidate = format!("{name}_{n}");
                if self.used_names.insert(candidate.clone()) {
                    break Ident::new(&candidate, ident.span());
                }
                n += 1;
            }
        } else {
            ident.clone()
        };
        let id = self.bindings.all.len();
        self.bindings.all.push(Binding {
            ident: final_ident.clone(),
            user_name: name.clone(),
            mutable,
            ty,
            synthetic,
            assigned: false,
            site: Site::Other,
        });
        self.scopes
            .last_mut()
            .expect("a scope is open")
            .push((name, id));
        (id, final_ident)
    }

    /// Declares every binding of `pat` (renaming them in place), typed against `ty`.
    fn declare_pattern(&mut self, pat: &mut Pat, ty: TypeInfo, at: At) -> Vec<BindingId> {
        let site = match at {
            At::Let => Site::Let(pat.clone()),
            At::LetElse => Site::LetElse(pat.clone()),
            At::Pattern(keyword, source) => Site::Pattern {
                pat: pat.clone(),
                keyword,
                source,
            },
        };
        let mut typed = Vec::new();
        types::bind_pattern(pat, ty, &mut typed);
        let mut ids = Vec::new();
        let mut renames = Vec::new();
        for (ident, _by_ref, mutable) in resolve::pattern_bindings(pat) {
            let name = ident.to_string();
            let ty = typed
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map_or(TypeInfo::Unknown, |(_, t)| t.clone());
            let (id, final_ident) = self.declare(&ident, mutable, ty, false);
            self.bindings.all[id].site = site.clone();
            ids.push(id);
            if final_ident != name {
                renames.push((name, final_ident));
            }
        }
        if !renames.is_empty() {
            RenamePattern(&renames).visit_pat_mut(pat);
        }
        ids
    }

    fn resolve_expr(&mut self, expr: &mut Expr) -> Resolved {
        let visible = self.visible();
        let loops = self.ir_loops();
        let r = resolve::resolve_expr(expr, &visible, &self.bindings, &loops);
        self.report_break_values(&r);
        r
    }

    fn report_break_values(&mut self, r: &Resolved) {
        for span in &r.break_values {
            self.diags.error_at(
                *span,
                "`break` with a value out of a loop that suspends: the loop is split at its durable awaits, so it cannot produce a value; assign the value to a variable declared before the loop, then `break`",
            );
        }
    }

    fn with_scope<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.scopes.push(Vec::new());
        let out = f(self);
        self.scopes.pop();
        out
    }

    fn lower_block(&mut self, block: &Block, tail: Tail) -> Seq {
        self.with_scope(|l| l.lower_stmts(&block.stmts, tail))
    }

    fn lower_stmts(&mut self, stmts: &[Stmt], tail: Tail) -> Seq {
        let mut out = Seq::new();
        for (i, stmt) in stmts.iter().enumerate() {
            let is_tail = if i + 1 == stmts.len() {
                tail
            } else {
                Tail::None
            };
            self.lower_stmt(stmt.clone(), is_tail, &mut out);
        }
        out
    }

    fn lower_stmt(&mut self, stmt: Stmt, tail: Tail, out: &mut Seq) {
        match stmt {
            Stmt::Local(local) => self.lower_local(local, out),
            Stmt::Expr(expr, semi) => {
                let tail = if semi.is_none() { tail } else { Tail::None };
                self.lower_expr_stmt(expr, semi.is_some(), tail, out)
            }
            Stmt::Macro(ref m) => {
                let mut stmt = stmt.clone();
                if tail != Tail::None && m.semi_token.is_none() {
                    // A macro in tail position is the workflow's result.
                    let Stmt::Macro(sm) = stmt else {
                        unreachable!()
                    };
                    let expr = Expr::Macro(syn::ExprMacro {
                        attrs: sm.attrs,
                        mac: sm.mac,
                    });
                    return self.lower_expr_stmt(expr, false, tail, out);
                }
                scan::check_plain_stmt(&stmt, &self.ctx, self.diags);
                self.push_plain(&mut stmt, out);
            }
            Stmt::Item(_) => out.push(Node::Plain {
                stmt,
                uses: BTreeSet::new(),
                defs: Vec::new(),
                exits: Exits::default(),
            }),
        }
    }

    /// Collects `saga.add(activity, ..)` calls on a variable of type `Saga`.
    fn collect_compensations(&mut self, stmt: &Stmt) {
        struct Find<'a, 'b> {
            lowerer: &'a Lowerer<'b>,
            out: Vec<syn::Path>,
        }
        impl<'ast> Visit<'ast> for Find<'_, '_> {
            fn visit_expr_method_call(&mut self, mc: &'ast syn::ExprMethodCall) {
                if mc.method == "add"
                    && let Expr::Path(receiver) = &*mc.receiver
                    && let Some(name) = receiver.path.get_ident()
                    && let Some(TypeInfo::Known(syn::Type::Path(ty))) =
                        self.lowerer.var_type(&name.to_string())
                    && ty.path.segments.last().is_some_and(|s| s.ident == "Saga")
                    && let Some(Expr::Path(activity)) = mc.args.first()
                {
                    self.out.push(activity.path.clone());
                }
                syn::visit::visit_expr_method_call(self, mc);
            }
        }
        let mut find = Find {
            lowerer: self,
            out: Vec::new(),
        };
        find.visit_stmt(stmt);
        let found = find.out;
        self.compensations.extend(found);
    }

    /// Adds a plain statement after resolving it.
    fn push_plain(&mut self, stmt: &mut Stmt, out: &mut Seq) {
        self.collect_compensations(stmt);
        let visible = self.visible();
        let loops = self.ir_loops();
        let r = resolve::resolve_stmt(stmt, &visible, &self.bindings, &loops);
        self.report_break_values(&r);
        out.push(Node::Plain {
            stmt: stmt.clone(),
            uses: r.uses,
            defs: Vec::new(),
            exits: r.exits,
        });
    }

    fn lower_local(&mut self, mut local: syn::Local, out: &mut Seq) {
        let annotation = match &local.pat {
            Pat::Type(pt) => Some((*pt.ty).clone()),
            _ => None,
        };
        let Some(init) = &mut local.init else {
            // `let x;` declares a binding assigned later.
            let ty = annotation
                .as_ref()
                .map_or(TypeInfo::Unknown, types::from_annotation);
            let mut pat = local.pat.clone();
            let defs = self.declare_pattern(&mut pat, ty, At::Let);
            for d in &defs {
                self.bindings.all[*d].assigned = true;
            }
            local.pat = pat;
            out.push(Node::Plain {
                stmt: Stmt::Local(local),
                uses: BTreeSet::new(),
                defs,
                exits: Exits::default(),
            });
            return;
        };
        if init.diverge.is_none()
            && let Some((call, try_, span)) = scan::durable_await(&init.expr, &self.ctx)
        {
            let call = call.clone();
            let Some(op) = self.lower_op(&call, out) else {
                return;
            };
            let (pat, ty_annotation) = match local.pat.clone() {
                Pat::Type(pt) => (*pt.pat, Some(*pt.ty)),
                other => (other, None),
            };
            let ty = match &ty_annotation {
                Some(t) => types::from_annotation(t),
                None => types::await_type(&op.0, try_, &self.ctx),
            };
            let mut pat = pat;
            let binds = self.declare_pattern(&mut pat, ty, At::Let);
            self.push_await(
                op,
                try_,
                AwaitBind::Let {
                    pat,
                    ty: ty_annotation,
                    binds,
                },
                span,
                out,
            );
            return;
        }
        if init.diverge.is_none() && suspends_inside(&init.expr, &self.ctx) {
            let expr = (*init.expr).clone();
            return self.lower_suspending_let(local, expr, annotation, out);
        }
        self.hoist(&mut init.expr, out);
        if let Some((_, diverge)) = &init.diverge
            && scan::contains_durable_expr(diverge, &self.ctx)
        {
            self.diags.error_spanned(
                diverge,
                "durable operation inside a `let ... else` block: move it into its own statement before the `let`",
            );
        }
        let stmt_for_check = Stmt::Local(local.clone());
        scan::check_plain_stmt(&stmt_for_check, &self.ctx, self.diags);
        let init_ty = {
            let var = |n: &str| self.var_type(n);
            types::infer(&local.init.as_ref().expect("checked above").expr, &var)
        };
        let ty = annotation.as_ref().map_or(init_ty, types::from_annotation);
        // Resolve the initializer before the pattern's bindings exist.
        let mut uses = BTreeSet::new();
        let mut exits = Exits::default();
        if let Some(init) = &mut local.init {
            let r = self.resolve_expr(&mut init.expr);
            uses.extend(r.uses);
            exits.breaks.extend(r.exits.breaks);
            exits.continues.extend(r.exits.continues);
            if let Some((_, diverge)) = &mut init.diverge {
                let r = self.resolve_expr(diverge);
                uses.extend(r.uses);
                exits.breaks.extend(r.exits.breaks);
                exits.continues.extend(r.exits.continues);
            }
        }
        let at = match &local.init {
            Some(init) if init.diverge.is_some() => At::LetElse,
            _ => At::Let,
        };
        let mut pat = local.pat.clone();
        let mut guard_uses = resolve::resolve_pat(&mut pat, &self.visible(), &self.bindings);
        uses.append(&mut guard_uses.uses);
        let defs = self.declare_pattern(&mut pat, ty, at);
        local.pat = pat;
        out.push(Node::Plain {
            stmt: Stmt::Local(local),
            uses,
            defs,
            exits,
        });
    }

    /// `let x = if/match/{..}` whose branches suspend: `let x;`, then each branch assigns it.
    fn lower_suspending_let(
        &mut self,
        mut local: syn::Local,
        expr: Expr,
        annotation: Option<syn::Type>,
        out: &mut Seq,
    ) {
        let ident = match &local.pat {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => pi.ident.clone(),
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => pi.ident.clone(),
                other => {
                    self.diags.error_spanned(other, "bind the value of an `if` or `match` that suspends to a single name, then destructure it in the next statement");
                    return;
                }
            },
            other => {
                self.diags.error_spanned(other, "bind the value of an `if` or `match` that suspends to a single name, then destructure it in the next statement");
                return;
            }
        };
        let ty = annotation
            .as_ref()
            .map_or(TypeInfo::Unknown, types::from_annotation);
        let mut pat = local.pat.clone();
        let defs = self.declare_pattern(&mut pat, ty, At::Let);
        let target = defs[0];
        self.bindings.all[target].assigned = true;
        // Declared without `mut`: each path assigns it once, as the original `let` did.
        if let Pat::Type(pt) = &mut pat {
            if let Pat::Ident(pi) = &mut *pt.pat {
                pi.mutability = None;
            }
        } else if let Pat::Ident(pi) = &mut pat {
            pi.mutability = None;
        }
        let _ = ident;
        local.pat = pat;
        local.init = None;
        out.push(Node::Plain {
            stmt: Stmt::Local(local),
            uses: BTreeSet::new(),
            defs: Vec::new(),
            exits: Exits::default(),
        });
        self.lower_expr_stmt(expr, false, Tail::Assign(target), out);
    }

    /// Parses a durable call and hoists durable awaits out of its arguments.
    fn lower_op(&mut self, call: &Expr, out: &mut Seq) -> Option<(Op, BTreeSet<BindingId>, Ident)> {
        let method = scan::method_ident(call)?;
        let mut op = scan::parse_op(call, self.diags)?;
        let mut uses = BTreeSet::new();
        let mut inputs: Vec<&mut Expr> = Vec::new();
        match &mut op {
            Op::Run { input, .. } => inputs.push(input),
            Op::Sleep { duration } => inputs.push(duration),
            Op::Child { input, policy, .. } => {
                inputs.push(input);
                if let Some(p) = policy {
                    inputs.push(p);
                }
            }
            Op::Compensate { step } => inputs.push(step),
            Op::Review { request } => inputs.push(request),
            Op::Signal { .. } | Op::Update { .. } => {}
            Op::All { group } | Op::Race { group } => {
                scan::check_group_expr(group, &self.ctx, self.diags);
                uses = self.resolve_expr(group).uses;
            }
        }
        for input in inputs {
            self.hoist(input, out);
            scan::check_plain_expr(input, &self.ctx, self.diags);
            uses.extend(self.resolve_expr(input).uses);
        }
        Some((op, uses, method))
    }

    fn push_await(
        &mut self,
        (op, uses, method): (Op, BTreeSet<BindingId>, Ident),
        try_: bool,
        bind: AwaitBind,
        span: Span,
        out: &mut Seq,
    ) {
        let id = self.awaits;
        self.awaits += 1;
        let in_scope = self
            .visible()
            .values()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push(Node::Await(Await {
            id,
            op,
            method,
            try_,
            bind,
            uses,
            span,
            in_scope,
        }));
    }

    /// Moves every durable await evaluated unconditionally in `expr` into a statement of its
    /// own before it, in evaluation order, and puts a variable holding its result in its place.
    fn hoist(&mut self, expr: &mut Expr, out: &mut Seq) {
        if let Some((call, try_, span)) = scan::durable_await(expr, &self.ctx) {
            let call = call.clone();
            let Some(op) = self.lower_op(&call, out) else {
                return;
            };
            let ident = format_ident!("__weft_value{}", self.temps, span = Span::mixed_site());
            self.temps += 1;
            let ty = types::await_type(&op.0, try_, &self.ctx);
            let (bid, _) = self.declare(&ident, false, ty, true);
            let pat: Pat = parse_quote!(#ident);
            self.push_await(
                op,
                try_,
                AwaitBind::Let {
                    pat,
                    ty: None,
                    binds: vec![bid],
                },
                span,
                out,
            );
            *expr = parse_quote!(#ident);
            return;
        }
        match expr {
            Expr::Array(a) => a.elems.iter_mut().for_each(|e| self.hoist(e, out)),
            Expr::Assign(a) => self.hoist(&mut a.right, out),
            Expr::Binary(b) => {
                self.hoist(&mut b.left, out);
                if !matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) {
                    self.hoist(&mut b.right, out);
                }
            }
            Expr::Call(c) => {
                self.hoist(&mut c.func, out);
                c.args.iter_mut().for_each(|e| self.hoist(e, out));
            }
            Expr::Cast(c) => self.hoist(&mut c.expr, out),
            Expr::Field(f) => self.hoist(&mut f.base, out),
            Expr::Group(g) => self.hoist(&mut g.expr, out),
            Expr::If(i) => self.hoist(&mut i.cond, out),
            Expr::Index(i) => {
                self.hoist(&mut i.expr, out);
                self.hoist(&mut i.index, out);
            }
            Expr::Let(l) => self.hoist(&mut l.expr, out),
            Expr::Match(m) => self.hoist(&mut m.expr, out),
            Expr::MethodCall(m) => {
                self.hoist(&mut m.receiver, out);
                m.args.iter_mut().for_each(|e| self.hoist(e, out));
            }
            Expr::Paren(p) => self.hoist(&mut p.expr, out),
            Expr::Reference(r) => self.hoist(&mut r.expr, out),
            Expr::Return(r) => {
                if let Some(e) = &mut r.expr {
                    self.hoist(e, out)
                }
            }
            Expr::Struct(s) => {
                s.fields
                    .iter_mut()
                    .for_each(|f| self.hoist(&mut f.expr, out));
                if let Some(rest) = &mut s.rest {
                    self.hoist(rest, out);
                }
            }
            Expr::Try(t) => self.hoist(&mut t.expr, out),
            Expr::Tuple(t) => t.elems.iter_mut().for_each(|e| self.hoist(e, out)),
            Expr::Unary(u) => self.hoist(&mut u.expr, out),
            _ => {}
        }
    }

    fn lower_expr_stmt(&mut self, mut expr: Expr, semi: bool, tail: Tail, out: &mut Seq) {
        match expr {
            Expr::If(i) if if_needs_ir(&i, &self.ctx) => self.lower_if(i, tail, out),
            Expr::Match(m)
                if m.arms
                    .iter()
                    .any(|a| scan::contains_durable_expr(&a.body, &self.ctx)) =>
            {
                self.lower_match(m, tail, out)
            }
            Expr::Loop(l) if scan::contains_durable_block(&l.body, &self.ctx) => {
                let label = l.label.map(|l| l.name);
                self.lower_loop(label, out, |lw, body| {
                    body.push(Node::Block(lw.lower_block(&l.body, Tail::None)));
                });
            }
            Expr::While(w)
                if scan::contains_durable_block(&w.body, &self.ctx)
                    || scan::contains_durable_expr(&w.cond, &self.ctx) =>
            {
                self.lower_while(w, out)
            }
            Expr::ForLoop(f) if scan::contains_durable_block(&f.body, &self.ctx) => {
                self.lower_for(f, out)
            }
            Expr::Block(b) if scan::contains_durable_block(&b.block, &self.ctx) => {
                if let Some(label) = &b.label {
                    self.diags.error_spanned(
                        &label.name,
                        "a labelled block cannot contain a durable await: the block is split at the await and its label cannot be resumed; use a `loop` with `break` instead",
                    );
                    return;
                }
                if b.block.stmts.is_empty() {
                    return;
                }
                let seq = self.lower_block(&b.block, tail);
                out.push(Node::Block(seq));
            }
            Expr::Break(ref b) if self.statement_exit_target(b.label.as_ref()).is_some() => {
                let Expr::Break(b) = expr else { unreachable!() };
                let id = self
                    .statement_exit_target(b.label.as_ref())
                    .expect("checked");
                if b.expr.is_some() {
                    self.diags.error_spanned(
                        b.break_token,
                        "`break` with a value out of a loop that suspends: the loop is split at its durable awaits, so it cannot produce a value; assign the value to a variable declared before the loop, then `break`",
                    );
                }
                out.push(Node::Break(id));
            }
            Expr::Continue(ref c) if self.statement_exit_target(c.label.as_ref()).is_some() => {
                let id = self
                    .statement_exit_target(c.label.as_ref())
                    .expect("checked");
                out.push(Node::Continue(id));
            }
            Expr::Return(mut r) => {
                let mut value = r.expr.take().map_or_else(|| parse_quote!(()), |e| *e);
                self.push_return(&mut value, out);
            }
            _ if tail != Tail::None => self.push_tail(&mut expr, tail, out),
            Expr::Assign(ref a)
                if scan::durable_await(&a.right, &self.ctx).is_some()
                    && self.assign_target(&a.left).is_some() =>
            {
                let Expr::Assign(a) = expr else {
                    unreachable!()
                };
                let target = self.assign_target(&a.left).expect("checked");
                self.bindings.all[target].assigned = true;
                let (call, try_, span) = scan::durable_await(&a.right, &self.ctx).expect("checked");
                let call = call.clone();
                if let Some(op) = self.lower_op(&call, out) {
                    self.push_await(op, try_, AwaitBind::Assign { target }, span, out);
                }
            }
            Expr::Assign(ref a) if semi && self.assign_target(&a.left).is_some() => {
                // Assigning a whole variable ends its old value's life.
                let Expr::Assign(a) = expr else {
                    unreachable!()
                };
                let target = self.assign_target(&a.left).expect("checked");
                self.bindings.all[target].assigned = true;
                let mut value = *a.right;
                self.push_tail(&mut value, Tail::Assign(target), out);
            }
            _ if scan::durable_await(&expr, &self.ctx).is_some() => {
                let (call, try_, span) = scan::durable_await(&expr, &self.ctx).expect("checked");
                let call = call.clone();
                if let Some(op) = self.lower_op(&call, out) {
                    self.push_await(op, try_, AwaitBind::Discard, span, out);
                }
            }
            _ => {
                self.hoist(&mut expr, out);
                let mut stmt = Stmt::Expr(expr, semi.then(Default::default));
                scan::check_plain_stmt(&stmt, &self.ctx, self.diags);
                self.push_plain(&mut stmt, out);
            }
        }
    }

    /// The value of a block in tail position: the workflow's result, or a deferred binding's value.
    fn push_tail(&mut self, value: &mut Expr, tail: Tail, out: &mut Seq) {
        match tail {
            Tail::Assign(target) => {
                self.hoist(value, out);
                scan::check_plain_expr(value, &self.ctx, self.diags);
                let uses = self.resolve_expr(value).uses;
                out.push(Node::Assign {
                    target,
                    expr: value.clone(),
                    uses,
                });
            }
            _ => self.push_return(value, out),
        }
    }

    fn push_return(&mut self, value: &mut Expr, out: &mut Seq) {
        self.hoist(value, out);
        scan::check_plain_expr(value, &self.ctx, self.diags);
        let uses = self.resolve_expr(value).uses;
        out.push(Node::Return {
            expr: value.clone(),
            uses,
        });
    }

    /// The suspending loop a statement-level `break`/`continue` leaves, if it is one.
    fn statement_exit_target(&self, label: Option<&Lifetime>) -> Option<LoopId> {
        match label {
            None => self.loop_stack.last().copied(),
            Some(l) => self
                .loop_stack
                .iter()
                .rev()
                .find(|id| {
                    self.loops[**id]
                        .user_label
                        .as_ref()
                        .is_some_and(|u| u.ident == l.ident)
                })
                .copied(),
        }
    }

    fn assign_target(&self, left: &Expr) -> Option<BindingId> {
        match left {
            Expr::Path(p) if p.qself.is_none() => {
                let name = p.path.get_ident()?.to_string();
                self.visible().get(&name).copied()
            }
            _ => None,
        }
    }

    fn lower_if(&mut self, mut i: syn::ExprIf, tail: Tail, out: &mut Seq) {
        if let Expr::Let(l) = &mut *i.cond {
            // `if let P = e { a } else { b }` is `match e { P => a, _ => b }`.
            let mut scrutinee = (*l.expr).clone();
            let pat = (*l.pat).clone();
            self.hoist(&mut scrutinee, out);
            scan::check_plain_expr(&scrutinee, &self.ctx, self.diags);
            let scrut_ty = {
                let var = |n: &str| self.var_type(n);
                types::infer(&scrutinee, &var)
            };
            let source = self.item_source(&scrutinee);
            let uses = self.resolve_expr(&mut scrutinee).uses;
            let mut arms = Vec::new();
            arms.push(self.with_scope(|lw| {
                let mut pat = pat;
                let binds = lw.declare_pattern(&mut pat, scrut_ty, At::Pattern("if let", source));
                let body = lw.lower_block(&i.then_branch, tail);
                MatchArm {
                    pat,
                    binds,
                    uses: BTreeSet::new(),
                    body,
                }
            }));
            let else_body = match i.else_branch.take() {
                Some((_, els)) => self.lower_else(*els, tail),
                None => Seq::new(),
            };
            arms.push(MatchArm {
                pat: parse_quote!(_),
                binds: Vec::new(),
                uses: BTreeSet::new(),
                body: else_body,
            });
            out.push(Node::Match {
                scrutinee,
                uses,
                arms,
            });
            return;
        }
        if contains_let(&i.cond) {
            self.diags.error_spanned(
                &i.cond,
                "an `if let` chain whose body suspends is not supported: split it into nested `if let`s, or match first and suspend after",
            );
            return;
        }
        let mut cond = (*i.cond).clone();
        self.hoist(&mut cond, out);
        scan::check_plain_expr(&cond, &self.ctx, self.diags);
        let uses = self.resolve_expr(&mut cond).uses;
        let then = self.lower_block(&i.then_branch, tail);
        let els = i
            .else_branch
            .take()
            .map(|(_, els)| self.lower_else(*els, tail));
        out.push(Node::If {
            cond,
            uses,
            then,
            els,
        });
    }

    fn lower_else(&mut self, els: Expr, tail: Tail) -> Seq {
        match els {
            Expr::Block(b) => self.lower_block(&b.block, tail),
            other => self.with_scope(|lw| {
                let mut seq = Seq::new();
                lw.lower_expr_stmt(other, false, tail, &mut seq);
                seq
            }),
        }
    }

    fn lower_match(&mut self, m: syn::ExprMatch, tail: Tail, out: &mut Seq) {
        let mut scrutinee = (*m.expr).clone();
        self.hoist(&mut scrutinee, out);
        scan::check_plain_expr(&scrutinee, &self.ctx, self.diags);
        let scrut_ty = {
            let var = |n: &str| self.var_type(n);
            types::infer(&scrutinee, &var)
        };
        let source = self.item_source(&scrutinee);
        let uses = self.resolve_expr(&mut scrutinee).uses;
        let mut arms = Vec::new();
        for arm in m.arms {
            arms.push(self.with_scope(|lw| {
                let mut pat = arm.pat.clone();
                let binds = lw.declare_pattern(
                    &mut pat,
                    scrut_ty.clone(),
                    At::Pattern("match", source.clone()),
                );
                // Guards read bindings of the pattern and of the body's scope.
                let guard = resolve::resolve_pat(&mut pat, &lw.visible(), &lw.bindings);
                let body = match *arm.body {
                    Expr::Block(b) if b.label.is_none() => lw.lower_block(&b.block, tail),
                    other => lw.with_scope(|lw| {
                        let mut seq = Seq::new();
                        lw.lower_expr_stmt(other, tail == Tail::None, tail, &mut seq);
                        seq
                    }),
                };
                MatchArm {
                    pat,
                    binds,
                    uses: guard.uses,
                    body,
                }
            }));
        }
        out.push(Node::Match {
            scrutinee,
            uses,
            arms,
        });
    }

    fn lower_loop(
        &mut self,
        user_label: Option<Lifetime>,
        out: &mut Seq,
        body: impl FnOnce(&mut Self, &mut Seq),
    ) {
        let id = self.loops.len();
        self.loops.push(LoopInfo {
            user_label,
            label: Lifetime::new(&format!("'__weft_loop{id}"), Span::mixed_site()),
        });
        self.loop_stack.push(id);
        let mut seq = Seq::new();
        self.with_scope(|lw| body(lw, &mut seq));
        self.loop_stack.pop();
        out.push(Node::Loop { id, body: seq });
    }

    fn lower_while(&mut self, w: syn::ExprWhile, out: &mut Seq) {
        let label = w.label.map(|l| l.name);
        let cond = (*w.cond).clone();
        let body = w.body;
        self.lower_loop(label, out, |lw, seq| {
            if let Expr::Let(l) = &cond {
                // `while let P = e { body }` is `loop { match e { P => body, _ => break } }`.
                let mut scrutinee = (*l.expr).clone();
                lw.hoist(&mut scrutinee, seq);
                scan::check_plain_expr(&scrutinee, &lw.ctx, lw.diags);
                let scrut_ty = {
                    let var = |n: &str| lw.var_type(n);
                    types::infer(&scrutinee, &var)
                };
                let source = lw.item_source(&scrutinee);
                let uses = lw.resolve_expr(&mut scrutinee).uses;
                let id = *lw.loop_stack.last().expect("inside the loop");
                let arm = lw.with_scope(|lw| {
                    let mut pat = (*l.pat).clone();
                    let binds =
                        lw.declare_pattern(&mut pat, scrut_ty, At::Pattern("while let", source));
                    let body = lw.lower_block(&body, Tail::None);
                    MatchArm {
                        pat,
                        binds,
                        uses: BTreeSet::new(),
                        body,
                    }
                });
                let exit = MatchArm {
                    pat: parse_quote!(_),
                    binds: Vec::new(),
                    uses: BTreeSet::new(),
                    body: vec![Node::Break(id)],
                };
                seq.push(Node::Match {
                    scrutinee,
                    uses,
                    arms: vec![arm, exit],
                });
            } else {
                let mut cond = cond;
                lw.hoist(&mut cond, seq);
                scan::check_plain_expr(&cond, &lw.ctx, lw.diags);
                let uses = lw.resolve_expr(&mut cond).uses;
                let id = *lw.loop_stack.last().expect("inside the loop");
                seq.push(Node::If {
                    cond: parse_quote!(!(#cond)),
                    uses,
                    then: vec![Node::Break(id)],
                    els: None,
                });
                seq.push(Node::Block(lw.lower_block(&body, Tail::None)));
            }
        });
    }

    fn lower_for(&mut self, f: syn::ExprForLoop, out: &mut Seq) {
        let mut iterable = (*f.expr).clone();
        // `for x in v.into_iter()` is `for x in v`: iterate what the position can be saved for.
        while let Expr::MethodCall(mc) = &iterable
            && mc.method == "into_iter"
            && mc.args.is_empty()
            && mc.turbofish.is_none()
        {
            iterable = (*mc.receiver).clone();
        }
        self.hoist(&mut iterable, out);
        scan::check_plain_expr(&iterable, &self.ctx, self.diags);
        let types = {
            let var = |n: &str| self.var_type(n);
            types::iteration_types(&iterable, &var)
        };
        let mut array = false;
        let (iter_ty, item_ty) = match types {
            Ok(it) => {
                array = it.array;
                (TypeInfo::Known(it.iter), TypeInfo::Known(it.item))
            }
            Err(kind) => {
                let message = match kind {
                    "range" => {
                        "cannot tell the integer type of this range in a `for` loop that suspends: the loop's position is saved in the workflow state, which must name its type; give a bound a type, for example `0u32..n`, `0..n as usize`, or `0..items.len()`"
                    }
                    "borrow" => {
                        "a `for` loop that suspends cannot iterate over borrowed data: the loop's position is saved in the workflow state, which cannot hold references; iterate over an owned `Vec`, for example `items.clone()` bound with a type: `let items: Vec<Item> = ...;`"
                    }
                    _ => {
                        "unsupported iterable in a `for` loop that suspends: the loop's position is saved in the workflow state, which works for integer ranges and owned `Vec`s or `VecDeque`s whose type it can name; bind the collection to an annotated variable first, `let items: Vec<Item> = ...;`, and iterate over `items`"
                    }
                };
                self.diags.error_spanned(&iterable, message);
                (TypeInfo::Unknown, TypeInfo::Unknown)
            }
        };
        let uses = self.resolve_expr(&mut iterable).uses;
        let iter_ident = format_ident!("__weft_iter{}", self.temps, span = Span::mixed_site());
        self.temps += 1;
        let (iter_id, _) = self.declare(&iter_ident, true, iter_ty, true);
        out.push(Node::Plain {
            stmt: if array {
                parse_quote!(let mut #iter_ident = ::weft_runtime::__private::durable_iter(::weft_runtime::__private::VecDeque::from(#iterable));)
            } else {
                parse_quote!(let mut #iter_ident = ::weft_runtime::__private::durable_iter(#iterable);)
            },
            uses,
            defs: vec![iter_id],
            exits: Exits::default(),
        });
        let label = f.label.map(|l| l.name);
        let pat = (*f.pat).clone();
        let body = f.body;
        self.lower_loop(label, out, |lw, seq| {
            let id = *lw.loop_stack.last().expect("inside the loop");
            let mut pat = pat;
            let binds = lw.declare_pattern(&mut pat, item_ty, At::Pattern("for", None));
            let mut uses = BTreeSet::new();
            uses.insert(iter_id);
            let mut exits = Exits::default();
            exits.breaks.insert(id);
            let label = &lw.loops[id].label;
            seq.push(Node::Plain {
                stmt: parse_quote! {
                    let #pat = match ::weft_runtime::__private::DurableIter::next_item(&mut #iter_ident) {
                        ::core::option::Option::Some(item) => item,
                        ::core::option::Option::None => break #label,
                    };
                },
                uses,
                defs: binds,
                exits,
            });
            seq.push(Node::Block(lw.lower_block(&body, Tail::None)));
        });
    }
}

fn if_needs_ir(i: &syn::ExprIf, ctx: &Ident) -> bool {
    scan::contains_durable_block(&i.then_branch, ctx)
        || i.else_branch.as_ref().is_some_and(|(_, e)| match &**e {
            Expr::If(inner) => {
                if_needs_ir(inner, ctx) || scan::contains_durable_expr(&inner.cond, ctx)
            }
            other => scan::contains_durable_expr(other, ctx),
        })
}

/// Whether an initializer is control flow whose branches suspend.
fn suspends_inside(expr: &Expr, ctx: &Ident) -> bool {
    match expr {
        Expr::If(i) => if_needs_ir(i, ctx),
        Expr::Match(m) => m
            .arms
            .iter()
            .any(|a| scan::contains_durable_expr(&a.body, ctx)),
        Expr::Block(b) => b.label.is_none() && scan::contains_durable_block(&b.block, ctx),
        _ => false,
    }
}

fn contains_let(expr: &Expr) -> bool {
    match expr {
        Expr::Let(_) => true,
        Expr::Binary(b) => contains_let(&b.left) || contains_let(&b.right),
        Expr::Paren(p) => contains_let(&p.expr),
        _ => false,
    }
}

struct RenamePattern<'a>(&'a [(String, Ident)]);

impl VisitMut for RenamePattern<'_> {
    fn visit_pat_ident_mut(&mut self, pi: &mut syn::PatIdent) {
        if let Some((_, new)) = self.0.iter().find(|(old, _)| pi.ident == old) {
            pi.ident = Ident::new(&new.to_string(), pi.ident.span());
        }
        if let Some((_, sub)) = &mut pi.subpat {
            self.visit_pat_mut(sub);
        }
    }
    fn visit_expr_mut(&mut self, _: &mut Expr) {}
}
