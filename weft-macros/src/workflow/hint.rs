//! The messages for a saved binding whose type the macro cannot tell, with a fix in the form
//! that compiles where the binding stands: a `let` takes `let x: T`, a `let .. else` takes the
//! whole value's type after its pattern, and a `while let`, `if let`, `match` arm or `for`
//! pattern takes no annotation at all, so the type goes into the pattern (`Some::<T>(x)`), onto
//! the collection the value comes from, or onto a new binding in the body.
//!
//! In: a [`Binding`]. Out: the message.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{Pat, parse_quote};

use super::ir::{Binding, Site};

/// The error for a saved binding whose type is unknown.
pub(crate) fn unknown_type(binding: &Binding) -> String {
    let name = &binding.user_name;
    let mut_ = if binding.mutable { "mut " } else { "" };
    let rebind = format!("`let {mut_}{name}: Type = {name};`");
    let fix = match &binding.site {
        Site::Other => format!("annotate it, for example `let {mut_}{name}: Type = ...`"),
        // Annotated, yet unknown: the annotation leaves this binding's part to inference.
        Site::Let(Pat::Type(pt)) | Site::LetElse(Pat::Type(pt))
            if is_whole(&pt.pat, name) || skeleton(&pt.pat, name).is_some() =>
        {
            "its part of the annotation is left to inference (`_`), which the workflow state cannot name; write the type there in full".to_string()
        }
        Site::Let(pat) if is_whole(pat, name) => {
            format!("annotate it, for example `let {mut_}{name}: Type = ...`")
        }
        Site::Let(pat) => match skeleton(pat, name) {
            Some(ty) => format!(
                "annotate the whole pattern, for example `let {}: {ty} = ...`",
                render(pat)
            ),
            None => format!(
                "the pattern cannot say its fields' types, so bind it again with its type in the next statement, {rebind}"
            ),
        },
        Site::LetElse(pat) => match skeleton(pat, name) {
            Some(ty) => format!(
                "a `let .. else` takes the type of the whole value after its pattern: `let {}: {ty} = .. else {{ .. }}`",
                render(pat)
            ),
            None => format!(
                "a `let .. else` pattern cannot say its fields' types, so bind it again with its type after it, {rebind}"
            ),
        },
        Site::Pattern {
            pat,
            keyword,
            source,
        } => {
            let mut options = Vec::new();
            if let Some(named) = with_turbofish(pat, name) {
                options.push(match *keyword {
                    "match" => format!("name the type in the pattern, `{named} => ..`"),
                    _ => format!("name the type in the pattern, `{keyword} {named} = ..`"),
                });
            }
            if let Some((var, annotated)) = source {
                options.push(format!(
                    "annotate `{var}` where it is declared, `{annotated}`"
                ));
            }
            let body = match *keyword {
                "match" => "the arm",
                "if let" => "the block",
                _ => "the loop body",
            };
            options.push(format!(
                "bind it again with its type as the first statement of {body}, {rebind}"
            ));
            let what = match *keyword {
                "match" => "a `match` arm's pattern".to_string(),
                "if let" => "an `if let` pattern".to_string(),
                other => format!("a `{other}` pattern"),
            };
            format!(
                "{what} cannot take a type annotation; {}",
                options.join(", or ")
            )
        }
    };
    format!(
        "cannot tell the type of `{name}`, which is held across a durable await: the workflow state stores it and must name its type; {fix}"
    )
}

/// Whether the binding is the whole pattern: `x` or `mut x`.
fn is_whole(pat: &Pat, name: &str) -> bool {
    match pat {
        Pat::Ident(pi) => pi.ident == name && pi.subpat.is_none(),
        Pat::Type(pt) => is_whole(&pt.pat, name),
        _ => false,
    }
}

/// The whole value's type, written so the macro and rustc both read the binding's type from
/// it: `Type` where the binding stands, `_` elsewhere. Only through tuples, `Some`, `Ok` and
/// `Err`: a struct or slice pattern cannot pass a type down to its fields.
fn skeleton(pat: &Pat, name: &str) -> Option<String> {
    part(pat, name).filter(|ty| ty.contains("Type"))
}

fn part(pat: &Pat, name: &str) -> Option<String> {
    match pat {
        Pat::Ident(pi) if pi.ident == name && pi.subpat.is_none() => Some("Type".into()),
        Pat::Ident(_) | Pat::Wild(_) => Some("_".into()),
        Pat::Paren(p) => part(&p.pat, name),
        Pat::Tuple(t) => {
            let elems: Vec<String> = t
                .elems
                .iter()
                .map(|e| part(e, name))
                .collect::<Option<_>>()?;
            if !elems.iter().any(|e| e.contains("Type")) {
                return None;
            }
            Some(match elems.len() {
                1 => format!("({},)", elems[0]),
                _ => format!("({})", elems.join(", ")),
            })
        }
        Pat::TupleStruct(ts) if ts.qself.is_none() && ts.elems.len() == 1 => {
            let inner = part(&ts.elems[0], name)?;
            if !inner.contains("Type") {
                return None;
            }
            match ts.path.segments.last()?.ident.to_string().as_str() {
                "Some" => Some(format!("Option<{inner}>")),
                "Ok" => Some(format!("Result<{inner}, _>")),
                "Err" => Some(format!("Result<_, {inner}>")),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The pattern with the `Some`/`Ok`/`Err` right around the binding naming its type
/// (`Some::<Type>(doc)`), if there is one.
fn with_turbofish(pat: &Pat, name: &str) -> Option<String> {
    struct Name<'a> {
        name: &'a str,
        done: bool,
    }
    impl VisitMut for Name<'_> {
        fn visit_pat_tuple_struct_mut(&mut self, ts: &mut syn::PatTupleStruct) {
            let around = ts.elems.len() == 1
                && matches!(&ts.elems[0], Pat::Ident(pi) if pi.ident == self.name && pi.subpat.is_none());
            if around
                && !self.done
                && let Some(last) = ts.path.segments.last_mut()
                && last.arguments.is_none()
            {
                let args: Option<syn::AngleBracketedGenericArguments> =
                    match last.ident.to_string().as_str() {
                        "Some" => Some(parse_quote!(::<Type>)),
                        "Ok" => Some(parse_quote!(::<Type, _>)),
                        "Err" => Some(parse_quote!(::<_, Type>)),
                        _ => None,
                    };
                if let Some(args) = args {
                    last.arguments = syn::PathArguments::AngleBracketed(args);
                    self.done = true;
                    return;
                }
            }
            syn::visit_mut::visit_pat_tuple_struct_mut(self, ts);
        }
        fn visit_expr_mut(&mut self, _: &mut syn::Expr) {}
    }
    let mut pat = pat.clone();
    let mut v = Name { name, done: false };
    v.visit_pat_mut(&mut pat);
    v.done.then(|| render(&pat))
}

/// A pattern as the user would write it (tokens printed with the spacing of rustfmt, roughly).
fn render(pat: &Pat) -> String {
    render_tokens(pat.to_token_stream())
}

fn render_tokens(tokens: TokenStream) -> String {
    let mut s = tokens.to_string();
    for (from, to) in [
        (" ,", ","),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" [", "["),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        s = s.replace(from, to);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(src: &str) -> Pat {
        syn::parse::Parser::parse_str(Pat::parse_multi_with_leading_vert, src).unwrap()
    }

    #[test]
    fn skeletons_put_the_type_where_the_binding_stands() {
        assert_eq!(skeleton(&pat("(a, b)"), "b").as_deref(), Some("(_, Type)"));
        assert_eq!(
            skeleton(&pat("Some((a, _))"), "a").as_deref(),
            Some("Option<(Type, _)>")
        );
        assert_eq!(
            skeleton(&pat("Err(e)"), "e").as_deref(),
            Some("Result<_, Type>")
        );
        assert_eq!(skeleton(&pat("Order { id, .. }"), "id"), None);
        assert_eq!(skeleton(&pat("x @ Some(_)"), "x"), None);
    }

    #[test]
    fn the_turbofish_goes_on_the_variant_around_the_binding() {
        assert_eq!(
            with_turbofish(&pat("Some(doc)"), "doc").as_deref(),
            Some("Some::<Type>(doc)")
        );
        assert_eq!(
            with_turbofish(&pat("(Ok(a), b)"), "a").as_deref(),
            Some("(Ok::<Type, _>(a), b)")
        );
        assert_eq!(with_turbofish(&pat("Some((a, b))"), "a"), None);
    }
}
