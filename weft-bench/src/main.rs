//! `weft-bench`: the Weft engine's benchmarks, one subcommand per scenario, on redb with
//! durable commits (and, for `postgres`, on a PostgreSQL server). Run in release mode:
//!
//! ```text
//! cargo run --release -p weft-bench -- throughput --n 1000 --k 10 --c 64
//! cargo run --release -p weft-bench -- all --write docs/benchmarks.md
//! cargo run --release -p weft-bench -- postgres --postgres "host=127.0.0.1 port=55432 user=postgres dbname=weftbench"
//! ```
//!
//! Every figure is a median over `--repeats` runs; each run uses a fresh store. See
//! `docs/benchmarks.md` for what each scenario measures and the latest figures.

mod backup;
mod ceiling;
mod cli;
mod compact;
mod http;
mod latency;
mod parked;
mod peers;
mod postgres;
mod recorder;
mod recovery;
mod report;
mod results;
mod throughput;
mod versus;
mod visibility;
mod workload;

use cli::{Opts, USAGE};

/// Errors end the run with a message; a benchmark has nothing to recover from.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = args.first().cloned() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    if scenario == "-h" || scenario == "--help" || scenario == "help" {
        print!("{USAGE}");
        return;
    }
    let opts = match Opts::parse(&args[1..]) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(dispatch(&scenario, &opts)) {
        eprintln!("weft-bench {scenario}: {e}");
        std::process::exit(1);
    }
}

async fn dispatch(scenario: &str, o: &Opts) -> BenchResult<()> {
    let r = o.repeats;
    let table = match scenario {
        "throughput" => {
            let (n, k, c) = (o.n.unwrap_or(1000), o.k.unwrap_or(10), o.c.unwrap_or(64));
            throughput::run(&o.dir, n, k, c, o.pad.unwrap_or(0), r)
                .await?
                .0
        }
        "latency" => {
            let (k, runs) = (o.k.unwrap_or(10), o.runs.unwrap_or(100));
            latency::run(&o.dir, k, runs, o.pad.unwrap_or(0), r)
                .await?
                .0
        }
        "recovery" => {
            let steps = o.steps.clone().unwrap_or_else(|| vec![10, 1_000, 10_000]);
            recovery::run(
                &o.dir,
                &steps,
                o.finished.unwrap_or(0),
                o.pad.unwrap_or(1024),
                r,
            )
            .await?
            .0
        }
        "parked" => {
            parked::run(&o.dir, o.n.unwrap_or(100_000), o.pad.unwrap_or(0), r)
                .await?
                .0
        }
        "ceiling" => {
            let (n, k, c) = (o.n.unwrap_or(1000), o.k.unwrap_or(10), o.c.unwrap_or(64));
            let (table, sweep, _) = ceiling::run(&o.dir, n, k, c, o.pad.unwrap_or(1024), r).await?;
            println!("### {}\n\n{}", sweep.title, sweep.markdown());
            table
        }
        "parked-child" => {
            let store = o.store.as_ref().ok_or("parked-child needs --store")?;
            let mode = o.mode.as_deref().unwrap_or("engine");
            return parked::child_main(store, mode, o.n.unwrap_or(100_000), o.pad.unwrap_or(0))
                .await;
        }
        "versus" => {
            let names = o.versus.as_deref().unwrap_or(versus::DEFAULT_VARIANTS);
            let variants = versus::variants(names)?;
            versus::run(&o.dir, &o.peers_dir, &variants, o.rounds.unwrap_or(3), r)
                .await?
                .0
        }
        "http" => {
            let names = o.versus.as_deref().unwrap_or("restate-wf");
            let peer = match names {
                "none" => None,
                names => Some(
                    versus::variants(names)?
                        .into_iter()
                        .next()
                        .ok_or("`--versus` names no variant")?,
                ),
            };
            let plan = http::Plan {
                n: o.n.unwrap_or(1000),
                k: o.k.unwrap_or(10),
                c: o.c.unwrap_or(64),
                runs: o.runs.unwrap_or(100),
                rounds: o.rounds.unwrap_or(3),
                call: http::Call::parse(o.call.as_deref().unwrap_or("two"))?,
                peer,
            };
            let (throughput, latency) = http::run(&o.dir, &o.peers_dir, &plan).await?;
            println!("### {}\n\n{}", throughput.title, throughput.markdown());
            latency
        }
        "postgres" => {
            let conn = o
                .postgres
                .clone()
                .ok_or("postgres needs --postgres \"host=… port=… user=… dbname=…\"")?;
            let peer = match o.versus.as_deref().unwrap_or("dbos-postgres") {
                "none" => None,
                names => versus::variants(names)?.into_iter().next(),
            };
            let plan = postgres::Plan {
                n: o.n.unwrap_or(1000),
                k: o.k.unwrap_or(10),
                c: o.c.unwrap_or(64),
                rounds: o.rounds.unwrap_or(5),
                conn,
                peer,
            };
            let (sides, per_round, targets) = postgres::run(&o.dir, &o.peers_dir, &plan).await?;
            println!("### {}\n\n{}", per_round.title, per_round.markdown());
            println!("{targets}");
            sides
        }
        "http-server" => {
            let store = o.store.as_ref().ok_or("http-server needs --store")?;
            return http::server_main(store).await;
        }
        "visibility" => {
            let (small, large) = (o.finished.unwrap_or(1_000), o.n.unwrap_or(1_000_000));
            visibility::run(&o.dir, small, large, r).await?.0
        }
        "backup" => backup::run(&o.dir, o.n.unwrap_or(1024), o.pad.unwrap_or(4096), r).await?,
        "compact" => compact::run(&o.dir, o.n.unwrap_or(64), o.pad.unwrap_or(4096), r).await?,
        "all" => return results::all(o).await,
        other => return Err(format!("unknown scenario `{other}`\n\n{USAGE}").into()),
    };
    println!("### {}\n\n{}", table.title, table.markdown());
    Ok(())
}
