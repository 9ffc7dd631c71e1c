//! Finds durable operations (the `ctx` methods in [`DURABLE_METHODS`]) and rejects every other
//! `.await`, and every durable operation in a place the state machine cannot suspend.
//!
//! In: expressions and statements of the body. Out: recognised operations, and errors.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Expr, GenericArgument, Ident, Macro};

use super::ir::Op;
use crate::diagnostics::Diagnostics;

/// The ctx methods that are durable operations.
pub(crate) const DURABLE_METHODS: &[&str] = &[
    "run",
    "sleep",
    "wait_for_signal",
    "all",
    "race",
    "child",
    "child_with",
    "compensate",
    "wait_for_update",
    "review",
];

/// The error for `.await` on a future that is not a durable operation. It lists every durable
/// operation, and says what to do with an async helper that waits: it cannot suspend the
/// workflow, since only the workflow's own body becomes the state machine.
fn not_durable_message(awaited: &Expr, ctx: &Ident) -> String {
    let mut ops: Vec<String> = DURABLE_METHODS
        .iter()
        .filter(|m| **m != "child_with")
        .map(|m| match *m {
            "child" => format!("`{ctx}.child`/`{ctx}.child_with`"),
            _ => format!("`{ctx}.{m}`"),
        })
        .collect();
    let last = ops.pop().unwrap_or_default();
    let ops = format!("{}, and {last}", ops.join(", "));
    if passes_ctx(awaited, ctx) {
        format!(
            "`.await` on a helper given the workflow context: only the workflow's own body can suspend, at its durable operations ({ops}), and a helper cannot wait on them for it; inline the helper's body into the workflow, or make it a `#[workflow]` of its own and call it with `{ctx}.child(helper, input).await`"
        )
    } else {
        format!(
            "`.await` on something that is not a durable operation: only the workflow context's durable operations survive a restart ({ops}), any other future would be lost; move the work into an `#[activity]` and call it with `{ctx}.run(activity, input).await`, and if it is an async helper that waits on durable operations itself, inline its body into the workflow or make it a `#[workflow]` called with `{ctx}.child(helper, input).await`"
        )
    }
}

/// Whether an awaited call hands the context to a helper: `helper(ctx, ..)`, `x.helper(ctx)`.
fn passes_ctx(expr: &Expr, ctx: &Ident) -> bool {
    let args = match expr {
        Expr::Call(c) => &c.args,
        Expr::MethodCall(mc) => &mc.args,
        Expr::Paren(p) => return passes_ctx(&p.expr, ctx),
        _ => return false,
    };
    args.iter().any(|a| match a {
        Expr::Reference(r) => is_ctx(&r.expr, ctx),
        other => is_ctx(other, ctx),
    })
}

/// A durable operation written as an expression, not yet checked for its arguments.
pub(crate) fn is_durable_call(expr: &Expr, ctx: &Ident) -> bool {
    match expr {
        Expr::MethodCall(mc) => {
            is_ctx(&mc.receiver, ctx) && DURABLE_METHODS.iter().any(|m| mc.method == m)
        }
        Expr::Paren(p) => is_durable_call(&p.expr, ctx),
        Expr::Group(g) => is_durable_call(&g.expr, ctx),
        _ => false,
    }
}

fn is_ctx(expr: &Expr, ctx: &Ident) -> bool {
    match expr {
        Expr::Path(p) => p.qself.is_none() && p.path.is_ident(ctx),
        Expr::Paren(p) => is_ctx(&p.expr, ctx),
        Expr::Group(g) => is_ctx(&g.expr, ctx),
        _ => false,
    }
}

/// The method name of a durable call, as written.
pub(crate) fn method_ident(expr: &Expr) -> Option<Ident> {
    match expr {
        Expr::MethodCall(mc) => Some(mc.method.clone()),
        Expr::Paren(p) => method_ident(&p.expr),
        Expr::Group(g) => method_ident(&g.expr),
        _ => None,
    }
}

/// Parses a durable call's arguments into an [`Op`], reporting malformed ones.
pub(crate) fn parse_op(expr: &Expr, diags: &mut Diagnostics) -> Option<Op> {
    let mc = match expr {
        Expr::MethodCall(mc) => mc,
        Expr::Paren(p) => return parse_op(&p.expr, diags),
        Expr::Group(g) => return parse_op(&g.expr, diags),
        _ => return None,
    };
    let method = mc.method.to_string();
    let args: Vec<&Expr> = mc.args.iter().collect();
    match method.as_str() {
        "run" => {
            if args.len() != 2 {
                diags.error_spanned(
                    &mc.method,
                    "`ctx.run` takes an activity and its input: write `ctx.run(activity_name, input)`",
                );
                return None;
            }
            let activity = match args[0] {
                Expr::Path(p) if p.qself.is_none() => p.path.clone(),
                other => {
                    diags.error_spanned(
                        other,
                        "the first argument of `ctx.run` must name an activity: the workflow state stores which activity it waits for, so it must be known at compile time; pass the name of a function marked `#[activity]`, for example `ctx.run(charge_card, payment)`",
                    );
                    return None;
                }
            };
            Some(Op::Run {
                activity,
                input: Box::new(args[1].clone()),
            })
        }
        "sleep" => {
            if args.len() != 1 {
                diags.error_spanned(
                    &mc.method,
                    "`ctx.sleep` takes one `Duration`: write `ctx.sleep(Duration::from_secs(60))`",
                );
                return None;
            }
            Some(Op::Sleep {
                duration: Box::new(args[0].clone()),
            })
        }
        "wait_for_signal" => {
            let ty = single_turbofish_type(mc);
            match ty {
                Some(ty) if args.is_empty() => Some(Op::Signal { ty: Box::new(ty) }),
                _ => {
                    diags.error_spanned(
                        &mc.method,
                        "`ctx.wait_for_signal` names the signal type with a turbofish: the state must know which type it waits for; write `ctx.wait_for_signal::<Approval>()`",
                    );
                    None
                }
            }
        }
        "wait_for_update" => {
            let ty = single_turbofish_type(mc);
            match ty {
                Some(ty) if args.is_empty() => Some(Op::Update { ty: Box::new(ty) }),
                _ => {
                    diags.error_spanned(
                        &mc.method,
                        "`ctx.wait_for_update` names the update type with a turbofish: the state must know which type it waits for; write `ctx.wait_for_update::<AddItem>()`",
                    );
                    None
                }
            }
        }
        "review" => {
            if args.len() != 1 {
                diags.error_spanned(
                    &mc.method,
                    "`ctx.review` takes one `ReviewRequest`: write `ctx.review(ReviewRequest { title, reviewers, timeout })`",
                );
                return None;
            }
            Some(Op::Review {
                request: Box::new(args[0].clone()),
            })
        }
        "child" | "child_with" => {
            let expected = if method == "child" { 2 } else { 3 };
            if args.len() != expected {
                let usage = if method == "child" {
                    "`ctx.child` takes a workflow and its input: write `ctx.child(workflow_name, input)`"
                } else {
                    "`ctx.child_with` takes a workflow, its input and a parent-close policy: write `ctx.child_with(workflow_name, input, ParentClosePolicy::Abandon)`"
                };
                diags.error_spanned(&mc.method, usage);
                return None;
            }
            let workflow = match args[0] {
                Expr::Path(p) if p.qself.is_none() => p.path.clone(),
                other => {
                    diags.error_spanned(
                        other,
                        "the first argument of `ctx.child` must name a workflow: the workflow state stores which workflow it waits for; pass the name of a function marked `#[workflow]`",
                    );
                    return None;
                }
            };
            Some(Op::Child {
                workflow,
                input: Box::new(args[1].clone()),
                policy: args.get(2).map(|p| Box::new((*p).clone())),
            })
        }
        "compensate" => {
            if args.len() != 1 {
                diags.error_spanned(
                    &mc.method,
                    "`ctx.compensate` takes one compensation: write `ctx.compensate(step)` with a step from `saga.pop()`",
                );
                return None;
            }
            Some(Op::Compensate {
                step: Box::new(args[0].clone()),
            })
        }
        "all" | "race" => {
            if args.len() != 1 {
                diags.error_spanned(
                    &mc.method,
                    format!("`ctx.{method}` takes one group of durable operations: a tuple, `ctx.{method}((ctx.run(a, x), ctx.sleep(d)))`, or a `Vec` of them"),
                );
                return None;
            }
            let group = Box::new(args[0].clone());
            Some(if method == "all" {
                Op::All { group }
            } else {
                Op::Race { group }
            })
        }
        _ => None,
    }
}

/// The one type of a call's turbofish (`ctx.wait_for_signal::<T>()`), if it has exactly one.
fn single_turbofish_type(mc: &syn::ExprMethodCall) -> Option<syn::Type> {
    let tf = mc.turbofish.as_ref()?;
    match (tf.args.len(), tf.args.first()) {
        (1, Some(GenericArgument::Type(t))) => Some(t.clone()),
        _ => None,
    }
}

/// If `expr` is `D.await` or `D.await?` for a durable call `D`: `(D, try_)`.
pub(crate) fn durable_await<'e>(expr: &'e Expr, ctx: &Ident) -> Option<(&'e Expr, bool, Span)> {
    match expr {
        Expr::Await(aw) if is_durable_call(&aw.base, ctx) => Some((&aw.base, false, aw.span())),
        Expr::Try(t) => match &*t.expr {
            Expr::Await(aw) if is_durable_call(&aw.base, ctx) => {
                Some((&aw.base, true, expr.span()))
            }
            _ => None,
        },
        Expr::Paren(p) => durable_await(&p.expr, ctx),
        _ => None,
    }
}

/// Whether `tokens` (a macro's input) mention a durable call such as `ctx.run(`.
pub(crate) fn tokens_mention_durable(tokens: &TokenStream, ctx: &Ident) -> Option<Span> {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    for window in trees.windows(3) {
        if let (TokenTree::Ident(i), TokenTree::Punct(p), TokenTree::Ident(m)) =
            (&window[0], &window[1], &window[2])
            && i == ctx
            && p.as_char() == '.'
            && DURABLE_METHODS.iter().any(|d| m == d)
        {
            return Some(i.span().join(m.span()).unwrap_or(m.span()));
        }
    }
    for tree in &trees {
        if let TokenTree::Group(g) = tree
            && let Some(span) = tokens_mention_durable(&g.stream(), ctx)
        {
            return Some(span);
        }
    }
    None
}

/// Whether an expression contains a durable call anywhere (closures and macros included).
pub(crate) fn contains_durable_expr(expr: &Expr, ctx: &Ident) -> bool {
    let mut finder = Finder { ctx, found: false };
    finder.visit_expr(expr);
    finder.found
}

/// Whether a block contains a durable call anywhere.
pub(crate) fn contains_durable_block(block: &syn::Block, ctx: &Ident) -> bool {
    let mut finder = Finder { ctx, found: false };
    finder.visit_block(block);
    finder.found
}

struct Finder<'a> {
    ctx: &'a Ident,
    found: bool,
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.found {
            return;
        }
        if is_durable_call(e, self.ctx) {
            self.found = true;
            return;
        }
        syn::visit::visit_expr(self, e);
    }
    fn visit_macro(&mut self, m: &'ast Macro) {
        if tokens_mention_durable(&m.tokens, self.ctx).is_some() {
            self.found = true;
        }
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Reports every `.await` and durable call left in code that stays as plain Rust: by then the
/// lowering has taken out every durable await it can suspend at, so any left are misplaced.
pub(crate) fn check_plain_stmt(stmt: &syn::Stmt, ctx: &Ident, diags: &mut Diagnostics) {
    let mut checker = Checker {
        ctx,
        diags,
        place: Vec::new(),
        group: false,
    };
    checker.visit_stmt(stmt);
}

/// Same as [`check_plain_stmt`] for an expression.
pub(crate) fn check_plain_expr(expr: &Expr, ctx: &Ident, diags: &mut Diagnostics) {
    let mut checker = Checker {
        ctx,
        diags,
        place: Vec::new(),
        group: false,
    };
    checker.visit_expr(expr);
}

/// Checks the argument of `ctx.all`/`ctx.race`: there, durable operations are written without
/// `.await` (also inside closures that build a `Vec` of them), and an `.await` is misplaced.
pub(crate) fn check_group_expr(expr: &Expr, ctx: &Ident, diags: &mut Diagnostics) {
    let mut checker = Checker {
        ctx,
        diags,
        place: Vec::new(),
        group: true,
    };
    checker.visit_expr(expr);
}

/// The durable calls written inside `expr` (closures included, not inside another durable
/// call), in source order: the branches of a `Vec` group.
pub(crate) fn durable_calls<'e>(expr: &'e Expr, ctx: &Ident) -> Vec<&'e Expr> {
    struct Collect<'a, 'e> {
        ctx: &'a Ident,
        out: Vec<&'e Expr>,
    }
    impl<'e> Visit<'e> for Collect<'_, 'e> {
        fn visit_expr(&mut self, e: &'e Expr) {
            if is_durable_call(e, self.ctx) {
                self.out.push(e);
            } else {
                syn::visit::visit_expr(self, e);
            }
        }
        fn visit_item(&mut self, _: &'e syn::Item) {}
    }
    let mut c = Collect {
        ctx,
        out: Vec::new(),
    };
    c.visit_expr(expr);
    c.out
}

/// The `ctx.run(activity, ..)` activity paths written inside a group, to register them.
pub(crate) fn group_activities(expr: &Expr, ctx: &Ident) -> Vec<syn::Path> {
    struct Collect<'a> {
        ctx: &'a Ident,
        out: Vec<syn::Path>,
    }
    impl<'ast> Visit<'ast> for Collect<'_> {
        fn visit_expr_method_call(&mut self, mc: &'ast syn::ExprMethodCall) {
            if is_ctx(&mc.receiver, self.ctx)
                && mc.method == "run"
                && let Some(Expr::Path(p)) = mc.args.first()
                && p.qself.is_none()
            {
                self.out.push(p.path.clone());
            }
            syn::visit::visit_expr_method_call(self, mc);
        }
    }
    let mut c = Collect {
        ctx,
        out: Vec::new(),
    };
    c.visit_expr(expr);
    c.out
}

struct Checker<'a> {
    ctx: &'a Ident,
    diags: &'a mut Diagnostics,
    /// Where we are: "a closure", "an async block", or an expression evaluated conditionally.
    place: Vec<&'static str>,
    /// Inside a group argument, where durable operations are written without `.await`.
    group: bool,
}

impl Checker<'_> {
    fn misplaced(&mut self, span: Span) {
        let msg = match self.place.last() {
            Some(&"a closure") => "durable operation inside a closure: the workflow can only suspend in its own body, not inside a closure that runs later; move the `ctx` call out of the closure into the workflow body".to_string(),
            Some(&"an async block") => "durable operation inside an async block: the workflow can only suspend in its own body; move the `ctx` call out of the async block into the workflow body".to_string(),
            Some(place) => format!("durable operation inside {place}: the workflow can only suspend at a statement it can resume; move it into its own statement, for example `let value = ctx.run(..).await?;`"),
            None => "this durable operation is in an expression the workflow cannot suspend in; move it into its own statement, for example `let value = ctx.run(..).await?;`".to_string(),
        };
        self.diags.error_at(span, msg);
    }

    fn within(&mut self, place: &'static str, f: impl FnOnce(&mut Self)) {
        self.place.push(place);
        f(self);
        self.place.pop();
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::Await(aw) => {
                if self.group && is_durable_call(&aw.base, self.ctx) {
                    let example = if self.place.last() == Some(&"a closure") {
                        "`ctx.all(items.iter().map(|i| ctx.run(a, i.clone())).collect::<Vec<_>>()).await`"
                    } else {
                        "`ctx.all((ctx.run(a, x), ctx.sleep(d))).await`"
                    };
                    self.diags.error_at(
                        aw.await_token.span,
                        format!("a branch of `ctx.all`/`ctx.race` is written without `.await`: the group runs its branches at once and is awaited as a whole; remove this `.await`, as in {example}"),
                    );
                    if let Expr::MethodCall(mc) = &*aw.base {
                        for arg in &mc.args {
                            self.visit_expr(arg);
                        }
                    }
                } else if is_durable_call(&aw.base, self.ctx) {
                    self.misplaced(
                        aw.base
                            .span()
                            .join(aw.await_token.span)
                            .unwrap_or(aw.await_token.span),
                    );
                    // The call itself is fine; check its arguments only.
                    if let Expr::MethodCall(mc) = &*aw.base {
                        for arg in &mc.args {
                            self.visit_expr(arg);
                        }
                    }
                } else {
                    let message = not_durable_message(&aw.base, self.ctx);
                    self.diags.error_at(aw.await_token.span, message);
                    self.visit_expr(&aw.base);
                }
            }
            _ if self.group && is_durable_call(e, self.ctx) => {
                // A branch of the group: check its arguments only.
                if let Expr::MethodCall(mc) = e {
                    for arg in &mc.args {
                        self.visit_expr(arg);
                    }
                }
            }
            _ if is_durable_call(e, self.ctx) => {
                let method = match e {
                    Expr::MethodCall(mc) => mc.method.to_string(),
                    _ => "run".to_string(),
                };
                if self.place.last() == Some(&"a closure")
                    || self.place.last() == Some(&"an async block")
                {
                    self.misplaced(e.span());
                } else {
                    self.diags.error_spanned(
                        e,
                        format!("`ctx.{method}(..)` must be awaited where it is written: a durable operation only takes effect at its `.await`; write `ctx.{method}(..).await`"),
                    );
                }
            }
            Expr::Closure(c) => self.within("a closure", |s| s.visit_expr(&c.body)),
            Expr::Async(a) => self.within("an async block", |s| s.visit_block(&a.block)),
            Expr::If(_) | Expr::Match(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => {
                self.within("an `if`, `match` or loop used as a value", |s| {
                    syn::visit::visit_expr(s, e)
                })
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => {
                self.visit_expr(&b.left);
                self.within("the right side of `&&` or `||`", |s| s.visit_expr(&b.right));
            }
            _ => syn::visit::visit_expr(self, e),
        }
    }

    fn visit_macro(&mut self, m: &'ast Macro) {
        if let Some(span) = tokens_mention_durable(&m.tokens, self.ctx)
            && self.group
        {
            self.diags.error_at(
                span,
                "durable operation inside a macro in a group: `#[workflow]` cannot see into a macro such as `vec![..]`, and must see each operation of `ctx.all`/`ctx.race` to register it; build the `Vec` without a macro: `Vec::from([ctx.run(a, x), ctx.run(a, y)])` or `items.iter().map(|i| ctx.run(a, i.clone())).collect::<Vec<_>>()`",
            );
        } else if let Some(span) = tokens_mention_durable(&m.tokens, self.ctx) {
            self.diags.error_at(
                span,
                "durable operation inside a macro: the workflow can only suspend in its own code, not inside a macro's expansion; bind the result first, `let value = ctx.run(..).await?;`, and pass `value` to the macro",
            );
        }
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}
