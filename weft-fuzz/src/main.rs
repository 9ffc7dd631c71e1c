//! `weft-fuzz`: the seeded mutation fuzzer over every decoder of Weft's stored bytes.
//!
//! It runs the loop in a child process (itself, with `--worker`) and watches it: a panic or an
//! allocation over the limit is caught and reported by the child; an abort (a failed
//! allocation, a stack overflow), which nothing inside the process can catch, ends the child,
//! and the parent replays the last stretch of inputs one by one to find and save the input that
//! aborted. Every input follows from the seed and its index, so any of them can be rebuilt.

use std::alloc::System;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cap::Cap;
use weft_fuzz::run::{self, Budget, Config, Failure, FailureKind, Observer, Report};
use weft_runtime::engine::DEFAULT_PAYLOAD_LIMIT;

/// Counts every allocation, and caps the live total around each decode (see `run::run`).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The child reports its position every this many inputs.
const PROGRESS_EVERY: u64 = 1024;

const HELP: &str = "\
weft-fuzz: a seeded mutation fuzzer over every decoder of Weft's stored bytes

USAGE:
    weft-fuzz [--seed N] [--iterations N | --seconds S] [--payload-limit BYTES] [--out DIR]
    weft-fuzz --replay FILE

OPTIONS:
    --seed N              the seed every input follows from (default: from the clock; printed)
    --iterations N        decode N inputs (default: 100000)
    --seconds S           decode inputs for S seconds instead
    --payload-limit BYTES no decode may allocate more (default: the engine's, 1 MiB)
    --out DIR             where failing inputs are saved (default: fuzz-failures)
    --replay FILE         decode one saved input again, with the target its name gives
    (--worker, --from N, --trace and --abort-at N are the supervisor's and the tests' own)

Exits 0 when no decode panicked, aborted, allocated over the limit or refused a valid encoding;
1 otherwise, with each failing input saved as <target>--seed-<seed>--input-<index>.bin.";

struct Args {
    seed: u64,
    budget: Budget,
    payload_limit: usize,
    out_dir: PathBuf,
    replay: Option<PathBuf>,
    worker: bool,
    trace: bool,
    first: u64,
    abort_at: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        budget: Budget::Inputs(100_000),
        payload_limit: DEFAULT_PAYLOAD_LIMIT,
        out_dir: PathBuf::from("fuzz-failures"),
        replay: None,
        worker: false,
        trace: false,
        first: 0,
        abort_at: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|e| format!("{flag}: `{v}` is not a number: {e}"))
        };
        match flag.as_str() {
            "--seed" => args.seed = number(value()?)?,
            "--iterations" => args.budget = Budget::Inputs(number(value()?)?),
            "--seconds" => args.budget = Budget::Time(Duration::from_secs(number(value()?)?)),
            "--payload-limit" => args.payload_limit = number(value()?)? as usize,
            "--out" => args.out_dir = PathBuf::from(value()?),
            "--replay" => args.replay = Some(PathBuf::from(value()?)),
            "--worker" => args.worker = true,
            "--trace" => args.trace = true,
            "--from" => args.first = number(value()?)?,
            // Aborts the worker at this input: how the tests check that an abort is found.
            "--abort-at" => args.abort_at = Some(number(value()?)?),
            "-h" | "--help" => return Err(HELP.to_string()),
            other => return Err(format!("unknown option `{other}`\n\n{HELP}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.replay {
        return replay(path, args.payload_limit);
    }
    if args.worker {
        return worker(&args);
    }
    supervise(&args)
}

/// Runs the loop in this process, reporting progress on stdout for the supervisor.
fn worker(args: &Args) -> ExitCode {
    let config = Config {
        seed: args.seed,
        first: args.first,
        budget: args.budget,
        payload_limit: args.payload_limit,
        out_dir: args.out_dir.clone(),
    };
    let mut lines = Lines {
        trace: args.trace,
        abort_at: args.abort_at,
    };
    let report = run::run(&config, &ALLOCATOR, &mut lines);
    print_report(&report);
    if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The worker's side of the protocol: `progress <index>` lines, flushed, so the supervisor
/// knows where an abort happened; failures as they happen, so an abort later loses none.
struct Lines {
    trace: bool,
    abort_at: Option<u64>,
}

impl Observer for Lines {
    fn before(&mut self, index: u64) {
        if self.trace || index.is_multiple_of(PROGRESS_EVERY) {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "progress {index}");
            let _ = stdout.flush();
        }
        if self.abort_at == Some(index) {
            std::process::abort();
        }
    }

    fn failed(&mut self, failure: &Failure) {
        let what = match &failure.kind {
            FailureKind::Panic(message) => format!("panicked: {message}"),
            FailureKind::OverLimit(bytes) => format!("allocated {bytes} bytes"),
            FailureKind::Refused => "refused its valid encoding".to_string(),
        };
        let saved = failure
            .saved
            .as_ref()
            .map(|p| format!("; saved to {}", p.display()))
            .unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "FAILURE {} input {}: {what}{saved}",
            failure.target, failure.index
        );
        let _ = stdout.flush();
    }
}

fn print_report(report: &Report) {
    println!("inputs: {}", report.inputs);
    println!(
        "  accepted (valid, or still valid after mutation): {}",
        report.accepted
    );
    println!("  panics: {}", report.panics);
    println!(
        "  decodes that allocated over the payload limit: {}",
        report.over_limit
    );
    println!("  valid encodings refused: {}", report.refused_valid);
    println!(
        "  most bytes allocated by one decode: {} ({})",
        report.max_allocated,
        report.max_allocated_by.unwrap_or("-")
    );
    println!("  inputs per target:");
    for (target, n) in &report.per_target {
        println!("    {target}: {n}");
    }
}

/// Runs a worker over `args`' inputs; returns its exit status and the last index it reported.
fn run_worker(args: &Args, first: u64, budget: Budget, trace: bool) -> (Option<i32>, Option<u64>) {
    let exe = std::env::current_exe().expect("the fuzzer knows its own path");
    let mut command = Command::new(exe);
    command
        .arg("--worker")
        .args(["--seed", &args.seed.to_string()])
        .args(["--from", &first.to_string()])
        .args(["--payload-limit", &args.payload_limit.to_string()])
        .arg("--out")
        .arg(&args.out_dir);
    match budget {
        Budget::Inputs(n) => command.args(["--iterations", &n.to_string()]),
        Budget::Time(t) => command.args(["--seconds", &t.as_secs().to_string()]),
    };
    if trace {
        command.arg("--trace");
    }
    if let Some(index) = args.abort_at {
        command.args(["--abort-at", &index.to_string()]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("the fuzzer can start its worker");
    let mut last = None;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        match line.strip_prefix("progress ") {
            Some(index) => last = index.parse().ok(),
            None if !trace => println!("{line}"),
            None => {}
        }
    }
    let status = child.wait().expect("the worker ends");
    (status.code(), last)
}

fn supervise(args: &Args) -> ExitCode {
    let started = Instant::now();
    println!(
        "weft-fuzz: seed {}, {} targets, payload limit {} bytes",
        args.seed,
        weft_fuzz::targets::TARGETS.len(),
        args.payload_limit
    );
    let (code, last) = run_worker(args, args.first, args.budget, false);
    let seconds = started.elapsed().as_secs_f64();
    match code {
        Some(0) => {
            println!("aborts: 0");
            println!("result: clean ({seconds:.1} s)");
            ExitCode::SUCCESS
        }
        Some(_) => {
            println!("aborts: 0");
            println!("result: FAILED ({seconds:.1} s); replay with `weft-fuzz --replay FILE`");
            ExitCode::FAILURE
        }
        None => {
            // Killed by a signal: an abort. Replay from the last reported position, one by one.
            let from = last.unwrap_or(args.first);
            println!("aborts: 1 (the worker died after input {from}); finding the input");
            let (_, aborted_at) = run_worker(args, from, Budget::Inputs(PROGRESS_EVERY + 1), true);
            match aborted_at {
                Some(index) => {
                    let case = run::case(args.seed, index);
                    let path = run::failure_file(&args.out_dir, case.target.name, args.seed, index);
                    let saved = std::fs::create_dir_all(&args.out_dir)
                        .and_then(|()| std::fs::write(&path, &case.bytes));
                    println!(
                        "FAILURE {} input {index}: aborted; {}",
                        case.target.name,
                        match saved {
                            Ok(()) => format!("saved to {}", path.display()),
                            Err(e) => format!("could not save it: {e}"),
                        }
                    );
                }
                None => println!("the abort did not recur when replayed from input {from}"),
            }
            println!("result: FAILED ({seconds:.1} s)");
            ExitCode::FAILURE
        }
    }
}

/// Decodes one saved input again, in this process: a panic shows with its backtrace.
fn replay(path: &PathBuf, payload_limit: usize) -> ExitCode {
    let Some(target) = run::target_of_file(path) else {
        eprintln!(
            "{}: the file name does not start with a target name (<target>--...)",
            path.display()
        );
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let before = ALLOCATOR.total_allocated();
    let accepted = (target.decode)(&bytes);
    let used = ALLOCATOR.total_allocated() - before;
    println!(
        "{}: {} bytes, {}; {used} bytes allocated",
        target.name,
        bytes.len(),
        if accepted { "accepted" } else { "refused" }
    );
    if used > payload_limit {
        println!("over the payload limit of {payload_limit} bytes");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
