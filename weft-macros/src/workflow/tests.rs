//! Snapshot tests of the expansion: how a reviewer sees the state machine change.

use quote::quote;

fn expand(src: proc_macro2::TokenStream) -> String {
    crate::pretty(super::expand(proc_macro2::TokenStream::new(), src))
}

#[test]
fn scratch() {
    let out = expand(quote! {
        async fn match_result(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
            let label: String = match ctx.run(double, n).await {
                Ok(v) if v > 100 => format!("big {v}"),
                Err(e) => {
                    ctx.sleep(Duration::from_secs(1)).await;
                    format!("failed {}", e.code())
                }
            };
            let loud = ctx.run(shout, label).await?;
            Ok(loud)
        }
    });
    println!("{out}");
    let out = expand(quote! {
        async fn checkout(ctx: &mut WorkflowContext, order: Order) -> Result<Receipt, WorkflowError> {
            let charge = ctx.run(charge_card, order.payment.clone()).await?;
            ctx.sleep(Duration::from_secs(3600)).await;
            let approval = ctx.wait_for_signal::<Approval>().await;
            if !approval.approved {
                return Ok(Receipt::rejected(charge));
            }
            for line in 0..order.lines.len() {
                ctx.run(ship_line, order.lines[line].clone()).await?;
            }
            Ok(Receipt::shipped(charge))
        }
    });
    println!("{out}");
}
