//! Resolves names in plain code to the workflow's bindings, renaming the ones that had to be
//! renamed, and records which bindings a statement reads and which loops it leaves.
//!
//! In: a `syn` statement or expression plus the bindings visible at it. Out: the same code with
//! renamed uses, its used bindings, its exits (breaks and continues to suspending loops).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use proc_macro2::{Literal, Span, TokenStream, TokenTree};
use syn::visit_mut::VisitMut;
use syn::{Expr, Ident, Member, Pat};

use super::ir::{BindingId, Bindings, Exits, LoopId};

/// The bindings visible by name at a point of the body, innermost last.
pub(crate) type Visible = HashMap<String, BindingId>;

/// A suspending loop enclosing the code being resolved: its id and the user's label.
pub(crate) type IrLoop = (LoopId, Option<String>);

/// The outcome of resolving one piece of plain code.
#[derive(Default)]
pub(crate) struct Resolved {
    pub(crate) uses: BTreeSet<BindingId>,
    pub(crate) exits: Exits,
    /// `break value` out of a suspending loop.
    pub(crate) break_values: Vec<Span>,
}

struct Resolver<'a> {
    visible: &'a Visible,
    bindings: &'a Bindings,
    ir_loops: &'a [IrLoop],
    locals: Vec<Vec<String>>,
    inner_loops: Vec<Option<String>>,
    /// Inside a closure or async block: control flow there is its own.
    nested_fn: usize,
    out: Resolved,
}

/// Resolves an expression in place.
pub(crate) fn resolve_expr(
    expr: &mut Expr,
    visible: &Visible,
    bindings: &Bindings,
    ir_loops: &[IrLoop],
) -> Resolved {
    let mut r = Resolver::new(visible, bindings, ir_loops);
    r.visit_expr_mut(expr);
    r.out
}

/// Resolves a statement in place.
pub(crate) fn resolve_stmt(
    stmt: &mut syn::Stmt,
    visible: &Visible,
    bindings: &Bindings,
    ir_loops: &[IrLoop],
) -> Resolved {
    let mut r = Resolver::new(visible, bindings, ir_loops);
    r.visit_stmt_mut(stmt);
    r.out
}

/// Resolves the guard and nested expressions of a pattern in place (bindings are not uses).
pub(crate) fn resolve_pat(pat: &mut Pat, visible: &Visible, bindings: &Bindings) -> Resolved {
    let mut r = Resolver::new(visible, bindings, &[]);
    r.visit_pat_mut(pat);
    r.out
}

/// Every binding a pattern introduces: `(ident, by_ref, mutable)`.
pub(crate) fn pattern_bindings(pat: &Pat) -> Vec<(Ident, bool, bool)> {
    let mut out = Vec::new();
    collect_bindings(pat, &mut out);
    out
}

fn collect_bindings(pat: &Pat, out: &mut Vec<(Ident, bool, bool)>) {
    match pat {
        Pat::Ident(pi) => {
            let name = pi.ident.to_string();
            // An uppercase lone name is a unit struct, variant or constant, not a binding.
            let looks_like_binding = pi.by_ref.is_some()
                || pi.mutability.is_some()
                || pi.subpat.is_some()
                || !name.starts_with(|c: char| c.is_uppercase());
            if looks_like_binding {
                out.push((
                    pi.ident.clone(),
                    pi.by_ref.is_some(),
                    pi.mutability.is_some(),
                ));
            }
            if let Some((_, sub)) = &pi.subpat {
                collect_bindings(sub, out);
            }
        }
        Pat::Or(po) => {
            if let Some(first) = po.cases.first() {
                collect_bindings(first, out);
            }
        }
        Pat::Paren(p) => collect_bindings(&p.pat, out),
        Pat::Reference(r) => {
            let start = out.len();
            collect_bindings(&r.pat, out);
            for b in &mut out[start..] {
                b.1 = true;
            }
        }
        Pat::Slice(s) => s.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| collect_bindings(&f.pat, out)),
        Pat::Tuple(t) => t.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::Type(t) => collect_bindings(&t.pat, out),
        Pat::Guard(g) => collect_bindings(&g.pat, out),
        _ => {}
    }
}

impl<'a> Resolver<'a> {
    fn new(visible: &'a Visible, bindings: &'a Bindings, ir_loops: &'a [IrLoop]) -> Self {
        Resolver {
            visible,
            bindings,
            ir_loops,
            locals: Vec::new(),
            inner_loops: Vec::new(),
            nested_fn: 0,
            out: Resolved::default(),
        }
    }

    fn lookup(&self, name: &str) -> Option<BindingId> {
        if self
            .locals
            .iter()
            .any(|scope| scope.iter().any(|n| n == name))
        {
            return None;
        }
        self.visible.get(name).copied()
    }

    /// Records a use of `ident` and renames it if its binding was renamed.
    fn use_ident(&mut self, ident: &mut Ident) {
        if let Some(id) = self.lookup(&ident.to_string()) {
            self.out.uses.insert(id);
            let target = &self.bindings.all[id].ident;
            if target != ident {
                *ident = Ident::new(&target.to_string(), ident.span());
            }
        }
    }

    fn declare(&mut self, pat: &Pat) {
        let names = pattern_bindings(pat);
        if let Some(scope) = self.locals.last_mut() {
            scope.extend(names.into_iter().map(|(i, _, _)| i.to_string()));
        }
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.locals.push(Vec::new());
        f(self);
        self.locals.pop();
    }

    fn target_loop(&self, label: Option<&syn::Lifetime>) -> Option<LoopId> {
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
                self.ir_loops
                    .iter()
                    .rev()
                    .find(|(_, user)| user.as_deref() == Some(name.as_str()))
                    .map(|(id, _)| *id)
            }
            None if self.inner_loops.is_empty() => self.ir_loops.last().map(|(id, _)| *id),
            None => None,
        }
    }

    fn rename_tokens(&mut self, tokens: TokenStream) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = Vec::with_capacity(trees.len());
        for i in 0..trees.len() {
            let tree = &trees[i];
            match tree {
                TokenTree::Ident(ident) => {
                    let prev_is_path_or_field = i > 0
                        && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
                    let next_is_colon =
                        matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                    let mut ident = ident.clone();
                    if !prev_is_path_or_field && !next_is_colon {
                        self.use_ident(&mut ident);
                    }
                    out.push(TokenTree::Ident(ident));
                }
                TokenTree::Literal(lit) => out.push(TokenTree::Literal(self.format_captures(lit))),
                TokenTree::Group(g) => {
                    let mut group =
                        proc_macro2::Group::new(g.delimiter(), self.rename_tokens(g.stream()));
                    group.set_span(g.span());
                    out.push(TokenTree::Group(group));
                }
                TokenTree::Punct(_) => out.push(tree.clone()),
            }
        }
        out.into_iter().collect()
    }

    /// Implicit captures in a format string (`"{total}"`) are uses too.
    fn format_captures(&mut self, lit: &Literal) -> Literal {
        let text = lit.to_string();
        if !text.starts_with('"') || !text.contains('{') {
            return lit.clone();
        }
        let chars: Vec<char> = text.chars().collect();
        let mut rewritten = String::with_capacity(text.len());
        let mut changed = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            rewritten.push(c);
            i += 1;
            if c != '{' {
                continue;
            }
            if chars.get(i) == Some(&'{') {
                rewritten.push('{');
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let ends_capture = matches!(chars.get(i), Some('}') | Some(':'));
            let is_ident = name.starts_with(|c: char| c.is_alphabetic() || c == '_');
            if ends_capture && is_ident {
                let mut ident = Ident::new(&name, lit.span());
                self.use_ident(&mut ident);
                let new_name = ident.to_string();
                changed |= new_name != name;
                rewritten.push_str(&new_name);
            } else {
                rewritten.push_str(&name);
            }
        }
        if !changed {
            return lit.clone();
        }
        match Literal::from_str(&rewritten) {
            Ok(mut new) => {
                new.set_span(lit.span());
                new
            }
            Err(_) => lit.clone(),
        }
    }
}

impl VisitMut for Resolver<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Path(p)
                if p.qself.is_none()
                    && p.path.segments.len() == 1
                    && p.path.leading_colon.is_none() =>
            {
                let seg = &mut p.path.segments[0];
                if seg.arguments.is_none() {
                    self.use_ident(&mut seg.ident);
                }
            }
            Expr::Struct(s) => {
                self.visit_path_mut(&mut s.path);
                for field in s.fields.iter_mut() {
                    let shorthand = field.colon_token.is_none();
                    self.visit_expr_mut(&mut field.expr);
                    if shorthand
                        && let (Member::Named(name), Expr::Path(p)) = (&field.member, &field.expr)
                        && !p.path.is_ident(name)
                    {
                        field.colon_token = Some(Default::default());
                    }
                }
                if let Some(rest) = &mut s.rest {
                    self.visit_expr_mut(rest);
                }
            }
            Expr::Closure(c) => {
                self.nested_fn += 1;
                self.scoped(|r| {
                    for input in c.inputs.iter() {
                        r.declare(input);
                    }
                    r.visit_expr_mut(&mut c.body);
                });
                self.nested_fn -= 1;
            }
            Expr::Async(a) => {
                self.nested_fn += 1;
                self.visit_block_mut(&mut a.block);
                self.nested_fn -= 1;
            }
            Expr::Match(m) => {
                self.visit_expr_mut(&mut m.expr);
                for arm in m.arms.iter_mut() {
                    self.scoped(|r| {
                        r.declare(&arm.pat);
                        r.visit_pat_mut(&mut arm.pat);
                        r.visit_expr_mut(&mut arm.body);
                    });
                }
            }
            Expr::If(i) => {
                self.scoped(|r| {
                    r.visit_expr_mut(&mut i.cond);
                    r.visit_block_mut(&mut i.then_branch);
                });
                if let Some((_, els)) = &mut i.else_branch {
                    self.visit_expr_mut(els);
                }
            }
            Expr::Let(l) => {
                // Bindings of an `if let`/`while let` scope the rest of the condition and the body:
                // the caller opened that scope.
                self.visit_expr_mut(&mut l.expr);
                self.declare(&l.pat);
                self.visit_pat_mut(&mut l.pat);
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.inner_loops
                    .push(f.label.as_ref().map(|l| l.name.ident.to_string()));
                self.scoped(|r| {
                    r.declare(&f.pat);
                    r.visit_block_mut(&mut f.body);
                });
                self.inner_loops.pop();
            }
            Expr::While(w) => {
                self.inner_loops
                    .push(w.label.as_ref().map(|l| l.name.ident.to_string()));
                self.scoped(|r| {
                    r.visit_expr_mut(&mut w.cond);
                    r.visit_block_mut(&mut w.body);
                });
                self.inner_loops.pop();
            }
            Expr::Loop(l) => {
                self.inner_loops
                    .push(l.label.as_ref().map(|l| l.name.ident.to_string()));
                self.visit_block_mut(&mut l.body);
                self.inner_loops.pop();
            }
            Expr::Block(b) => {
                // A labelled block is a `break` target of its own.
                let labelled = b.label.is_some();
                if labelled {
                    self.inner_loops
                        .push(b.label.as_ref().map(|l| l.name.ident.to_string()));
                }
                self.visit_block_mut(&mut b.block);
                if labelled {
                    self.inner_loops.pop();
                }
            }
            Expr::Break(b) => {
                if let Some(id) = self.target_loop(b.label.as_ref()) {
                    self.out.exits.breaks.insert(id);
                    if b.expr.is_some() {
                        self.out.break_values.push(b.break_token.span);
                    }
                }
                if let Some(value) = &mut b.expr {
                    self.visit_expr_mut(value);
                }
            }
            Expr::Continue(c) => {
                if let Some(id) = self.target_loop(c.label.as_ref()) {
                    self.out.exits.continues.insert(id);
                }
            }
            _ => syn::visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_block_mut(&mut self, b: &mut syn::Block) {
        self.scoped(|r| {
            for stmt in b.stmts.iter_mut() {
                r.visit_stmt_mut(stmt);
            }
        });
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let Some(init) = &mut local.init {
            self.visit_expr_mut(&mut init.expr);
            if let Some((_, diverge)) = &mut init.diverge {
                self.visit_expr_mut(diverge);
            }
        }
        self.declare(&local.pat);
        self.visit_pat_mut(&mut local.pat);
    }

    fn visit_pat_mut(&mut self, pat: &mut Pat) {
        // Only guards and constants inside patterns read bindings.
        match pat {
            Pat::Guard(g) => {
                self.visit_pat_mut(&mut g.pat);
                self.visit_expr_mut(&mut g.guard);
            }
            Pat::Ident(pi) => {
                if let Some((_, sub)) = &mut pi.subpat {
                    self.visit_pat_mut(sub);
                }
            }
            _ => syn::visit_mut::visit_pat_mut(self, pat),
        }
    }

    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        m.tokens = self.rename_tokens(m.tokens.clone());
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
