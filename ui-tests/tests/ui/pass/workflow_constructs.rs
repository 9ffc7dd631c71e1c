//! Every representative workflow compiles as its own crate and runs to completion on the engine
//! (memory storage; the sleeps are short or not taken on these inputs).

#[path = "../../../src/representative.rs"]
mod representative;

use representative::*;
use weft_runtime::Engine;
use weft_runtime::storage::MemoryStorage;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let engine = Engine::builder(MemoryStorage::new())
            .register::<if_else>()
            .register::<labelled_loops>()
            .register::<for_loops>()
            .register::<shadowing>()
            .register::<hoisted>()
            .build()
            .await
            .expect("the engine builds");
        let b = engine.start::<if_else>(9).await.unwrap();
        assert_eq!(b.result().await.unwrap().unwrap(), 21);
        let l = engine.start::<labelled_loops>(2).await.unwrap();
        assert!(l.result().await.unwrap().is_ok());
        let lines = vec![Line { sku: "a".into(), quantity: 2 }];
        let f = engine.start::<for_loops>(lines).await.unwrap();
        assert_eq!(f.result().await.unwrap().unwrap(), 1000 + 6 + 2);
        let h = engine.start::<hoisted>(1).await.unwrap();
        // sum = add_one(1) + double(1) = 4; [add_one(4), 4] sums to 9; plus add_one(0).
        assert_eq!(h.result().await.unwrap().unwrap(), 10);
        engine.shutdown().await;
    });
}
