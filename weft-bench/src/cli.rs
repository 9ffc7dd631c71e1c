//! Command-line options: `--name value` pairs after the scenario name.

use std::path::PathBuf;

/// Options shared by the scenarios; each scenario reads the ones it uses.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Workflows per run (throughput, ceiling) or parked workflows (parked).
    pub n: Option<u64>,
    /// Steps per workflow.
    pub k: Option<u64>,
    /// Workflows in flight.
    pub c: Option<u64>,
    /// Repeats; figures are medians over them.
    pub repeats: usize,
    /// Size of the workflow's live local, in bytes.
    pub pad: Option<usize>,
    /// Latency: workflows run one after another per repeat.
    pub runs: Option<u64>,
    /// Recovery: finished workflows to put in one more store beside its parked ones.
    pub finished: Option<u64>,
    /// Recovery: the history lengths (completed steps) to park workflows at.
    pub steps: Option<Vec<u64>>,
    /// Where the stores are created (a fresh temporary directory inside it per run).
    pub dir: PathBuf,
    /// `all`: the results file to write.
    pub write: Option<PathBuf>,
    /// `all`: a peers JSONL file from `run_all.sh` to put beside our figures.
    pub peers: Option<PathBuf>,
    /// `versus` and `all`: the peer variants to pair with weft, comma-separated.
    pub versus: Option<String>,
    /// `versus`: rounds per variant.
    pub rounds: Option<usize>,
    /// `versus`: the peer scripts' folder (`bench/peers` of the shared folder).
    pub peers_dir: PathBuf,
    /// `parked-child`: the store to recover; `http-server`: the store to create.
    pub store: Option<PathBuf>,
    /// `http`: `two` (start, then result) or `one` (start and wait in one request).
    pub call: Option<String>,
    /// `parked-child`: `storage` (only scan the store) or `engine` (build an engine on it).
    pub mode: Option<String>,
    /// `postgres`: libpq settings of the database weft runs on.
    pub postgres: Option<String>,
}

/// Usage text.
pub const USAGE: &str = "\
usage: weft-bench <scenario> [options]

scenarios:
  throughput   N workflows of K sequential steps, C in flight     (--n 1000 --k 10 --c 64 --pad 0)
  latency      one workflow of K steps alone, RUNS times            (--k 10 --runs 100 --pad 0)
  recovery     workflows parked after each of STEPS completed steps (--steps 10,1000,10000 --pad 1024 --finished 0)
  parked       N sleeping workflows: resident memory                (--n 100000 --pad 0)
  ceiling      the engine vs the same writes straight into redb     (--n 1000 --k 10 --c 64 --pad 1024)
  visibility   a page of 50 by type and a count by status among N finished workflows, vs FINISHED (--n 1000000 --finished 1000; stores kept in --dir)
  backup       Engine::backup and storage::restore of a store of N MB, filled once (--n 1024 --pad 4096; store kept in --dir)
  compact      a store of N MB of state, 90% cancelled and purged, then storage::compact (--n 64 --pad 4096)
  versus       a peer's script, then weft on the same workload, per round (--versus restate-wf,restate-svc,restate-wf-c256 --rounds 3)
  http         W(N, K) at C through weft-server from this process, paired per round with a Restate
               variant's ingress and the embedded engine, then one workflow alone through HTTP
               (--n 1000 --k 10 --c 64 --runs 100 --rounds 3 --versus restate-wf|none --call two|one)
  postgres     W(N, K) at C with weft on PostgreSQL, paired per round with weft on redb and DBOS on
               the same server (its pg.sh cluster); database transactions and rows per step
               (--postgres \"host=127.0.0.1 port=55432 user=postgres dbname=weftbench\" --n 1000 --k 10
               --c 64 --rounds 5 --versus dbos-postgres|none)
  all          every scenario at sizes that finish in a few minutes (--write docs/benchmarks.md --peers FILE.jsonl --versus LIST)

common options: --repeats 3 (figures are medians), --dir DIR (where stores are created; default the temp dir)
peer options:   --peers-dir ../shared/bench/peers (the peer scripts), --peers FILE.jsonl (a run_all.sh result)
";

impl Opts {
    /// Parses `--name value` pairs.
    pub fn parse(args: &[String]) -> Result<Opts, String> {
        let mut opts = Opts {
            n: None,
            k: None,
            c: None,
            repeats: 3,
            pad: None,
            runs: None,
            finished: None,
            steps: None,
            dir: std::env::temp_dir(),
            write: None,
            peers: None,
            versus: None,
            rounds: None,
            peers_dir: crate::versus::default_peers_dir(),
            store: None,
            mode: None,
            call: None,
            postgres: None,
        };
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("option `{name}` needs a value\n\n{USAGE}"))?;
            let number = || {
                value
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| format!("option `{name}` needs a whole number, not `{value}`"))
            };
            match name.as_str() {
                "--n" => opts.n = Some(number()?),
                "--k" => opts.k = Some(number()?),
                "--c" => opts.c = Some(number()?.max(1)),
                "--repeats" => opts.repeats = number()?.max(1) as usize,
                "--pad" => opts.pad = Some(number()? as usize),
                "--runs" => opts.runs = Some(number()?.max(1)),
                "--finished" => opts.finished = Some(number()?),
                "--steps" => {
                    let steps = value
                        .split(',')
                        .map(|s| s.trim().replace('_', "").parse::<u64>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| {
                            format!("option `--steps` needs numbers like 10,1000, not `{value}`")
                        })?;
                    opts.steps = Some(steps);
                }
                "--dir" => opts.dir = PathBuf::from(value),
                "--write" => opts.write = Some(PathBuf::from(value)),
                "--peers" => opts.peers = Some(PathBuf::from(value)),
                "--versus" => opts.versus = Some(value.clone()),
                "--rounds" => opts.rounds = Some(number()?.max(1) as usize),
                "--peers-dir" => opts.peers_dir = PathBuf::from(value),
                "--store" => opts.store = Some(PathBuf::from(value)),
                "--mode" => opts.mode = Some(value.clone()),
                "--call" => opts.call = Some(value.clone()),
                "--postgres" => opts.postgres = Some(value.clone()),
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        Ok(opts)
    }
}
