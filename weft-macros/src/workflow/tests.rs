//! Snapshot tests of the expansion: how a reviewer sees the state machine change.
//!
//! Each `#[workflow]` in `ui-tests/src/representative.rs` (the file the differential tests
//! compile and run) is expanded here and its prettyplease-formatted output compared with the
//! committed snapshot. A change to a snapshot is a change to a stored state's shape: review it.

use quote::quote;

const REPRESENTATIVE: &str = include_str!("../../../ui-tests/src/representative.rs");

fn representative(name: &str) -> syn::ItemFn {
    let file = syn::parse_file(REPRESENTATIVE).expect("representative.rs parses");
    file.items
        .into_iter()
        .find_map(|item| match item {
            syn::Item::Fn(f) if f.sig.ident == name => Some(f),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no workflow `{name}` in representative.rs"))
}

fn expand_representative(name: &str) -> String {
    let mut item = representative(name);
    let attr = item
        .attrs
        .iter()
        .position(|a| a.path().is_ident("workflow"))
        .expect("marked #[workflow]");
    item.attrs.remove(attr);
    crate::pretty(super::expand(
        proc_macro2::TokenStream::new(),
        quote!(#item),
    ))
}

macro_rules! snapshot {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(expand_representative(stringify!($name)));
        }
    )*};
}

snapshot!(
    straight_line,
    if_else,
    match_result,
    labelled_loops,
    while_loops,
    for_loops,
    early_return,
    shadowing,
    deep_nesting,
    macro_uses,
    hoisted,
    approval_chain,
    no_input,
    several_inputs,
    line_check,
    composition,
    messages,
);

#[test]
fn every_representative_workflow_has_a_snapshot() {
    let file = syn::parse_file(REPRESENTATIVE).expect("representative.rs parses");
    let workflows: Vec<String> = file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Fn(f) if f.attrs.iter().any(|a| a.path().is_ident("workflow")) => {
                Some(f.sig.ident.to_string())
            }
            _ => None,
        })
        .collect();
    let snapshotted = [
        "straight_line",
        "if_else",
        "match_result",
        "labelled_loops",
        "while_loops",
        "for_loops",
        "early_return",
        "shadowing",
        "deep_nesting",
        "macro_uses",
        "hoisted",
        "approval_chain",
        "no_input",
        "several_inputs",
        "line_check",
        "composition",
        "messages",
    ];
    for w in &workflows {
        assert!(
            snapshotted.contains(&w.as_str()),
            "add `{w}` to the snapshot list"
        );
    }
}

/// Expansions of workflows whose saved types the macro infers from what is written: each
/// snapshot shows the state field's type it found.
fn expand_inline(item: proc_macro2::TokenStream) -> String {
    crate::pretty(super::expand(proc_macro2::TokenStream::new(), item))
}

#[test]
fn inferred_queue_item() {
    insta::assert_snapshot!(expand_inline(quote! {
        async fn drain(ctx: &mut WorkflowContext, docs: Vec<Document>) -> Result<u64, WorkflowError> {
            let mut queue: VecDeque<Document> = docs.into();
            let mut saga = Saga::new();
            let mut sum: u64 = 0;
            while let Some(doc) = queue.pop_front() {
                sum += ctx.run(index, doc.clone()).await?;
                saga.add(unindex, doc.clone());
                sum += ctx.run(index, doc).await?;
            }
            while let Some(step) = saga.pop() {
                ctx.compensate(step).await?;
            }
            Ok(sum)
        }
    }));
}

#[test]
fn inferred_for_items() {
    insta::assert_snapshot!(expand_inline(quote! {
        async fn each(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
            let docs = ctx.run(list_documents, n).await?;
            let mut sum: u64 = 0;
            for doc in docs {
                sum += ctx.run(index, doc.clone()).await?;
                sum += doc.id;
            }
            for id in [1u64, 2, 3] {
                ctx.sleep(Duration::from_secs(1)).await;
                sum += id;
            }
            Ok(sum)
        }
    }));
}

#[test]
fn inferred_vec_group() {
    insta::assert_snapshot!(expand_inline(quote! {
        async fn fan_out(ctx: &mut WorkflowContext, docs: Vec<Document>) -> Result<u64, WorkflowError> {
            let results = ctx
                .all(docs.iter().map(|d| ctx.run(index, d.clone())).collect::<Vec<_>>())
                .await;
            let names = vec![String::from("a"), "b".to_string()];
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(results.into_iter().filter_map(|r| r.ok()).sum::<u64>() + names.len() as u64)
        }
    }));
}

#[test]
fn fingerprint_changes_with_the_shape_and_not_with_the_code() {
    let base = quote! {
        async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
            let a = ctx.run(add_one, n).await?;
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(a)
        }
    };
    let same_shape = quote! {
        async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
            let a = ctx.run(add_one, n + 1).await?;
            ctx.sleep(Duration::from_secs(2)).await;
            Ok(a * 2)
        }
    };
    let new_local = quote! {
        async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
            let a = ctx.run(add_one, n).await?;
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(a + n)
        }
    };
    let fp = |src: proc_macro2::TokenStream| {
        let out = super::expand(proc_macro2::TokenStream::new(), src).to_string();
        let at = out.find("FINGERPRINT").expect("has a fingerprint");
        out[at..at + 50].to_string()
    };
    assert_eq!(fp(base.clone()), fp(same_shape));
    assert_ne!(fp(base), fp(new_local));
}

#[test]
#[ignore]
fn debug_expand() {
    println!("{}", expand_representative(&std::env::var("WF").unwrap()));
}
