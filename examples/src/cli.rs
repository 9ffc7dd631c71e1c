//! The command-line scaffolding the example programs share: `--name value` flags, whole-number
//! values with a clear error, `--fresh` deletion, and a `main` that prints `USAGE` for `--help`
//! and turns a usage error into exit code 2.
//!
//! Deliberately small (no clap): each program still lists its own flags in one `match`, so its
//! parser reads next to its `USAGE` text.
//!
//! ```no_run
//! use weft_examples::cli::{self, Flags};
//!
//! const USAGE: &str = "usage: demo [--times N]\n";
//!
//! /// `Ok(None)` when help was asked for.
//! fn parse_args() -> Result<Option<u32>, String> {
//!     let mut times = 1;
//!     let mut flags = Flags::from_env();
//!     while let Some(flag) = flags.next_flag() {
//!         match flag.as_str() {
//!             "-h" | "--help" => return Ok(None),
//!             "--times" => times = flags.number()?,
//!             other => return Err(cli::unknown(other)),
//!         }
//!     }
//!     Ok(Some(times))
//! }
//!
//! async fn run(times: u32) -> Result<(), String> {
//!     (0..times).for_each(|_| println!("hello"));
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     cli::main("demo", USAGE, parse_args, run).await
//! }
//! ```

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

/// A program's arguments, read one flag at a time; the value methods take the argument after
/// the flag last returned by [`Flags::next_flag`] and name that flag in their errors.
pub struct Flags {
    args: std::vec::IntoIter<String>,
    flag: String,
}

impl Flags {
    /// The arguments this process was started with, without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// The given arguments (the program name excluded), for tests.
    pub fn new(args: impl IntoIterator<Item = String>) -> Self {
        let args: Vec<String> = args.into_iter().collect();
        Self {
            args: args.into_iter(),
            flag: String::new(),
        }
    }

    /// The next flag, or `None` once every argument has been read.
    pub fn next_flag(&mut self) -> Option<String> {
        let flag = self.args.next()?;
        self.flag.clone_from(&flag);
        Some(flag)
    }

    /// The current flag's value: the argument after it.
    pub fn value(&mut self) -> Result<String, String> {
        self.args
            .next()
            .ok_or_else(|| format!("{} needs a value; see --help", self.flag))
    }

    /// The current flag's value as a whole number.
    pub fn number<T: FromStr>(&mut self) -> Result<T, String> {
        let text = self.value()?;
        text.parse()
            .map_err(|_| format!("{} takes a whole number, not `{text}`", self.flag))
    }

    /// The current flag's value as a whole number of at least 1, for counts where 0 would
    /// mean nothing (such as `--crash-after`).
    pub fn positive(&mut self) -> Result<u64, String> {
        match self.number()? {
            0 => Err(format!("{} must be at least 1", self.flag)),
            n => Ok(n),
        }
    }
}

/// The error for an argument no flag of the program matches.
pub fn unknown(argument: &str) -> String {
    format!("unknown argument `{argument}`; see --help")
}

/// Deletes each of `paths` that exists, for `--fresh`, and says so; a missing file is fine.
pub fn delete_fresh(paths: &[&Path]) -> Result<(), String> {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => println!("--fresh: deleted {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot delete {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// A program's `main`: parses its arguments (`Ok(None)` means help was asked for: `usage` is
/// printed), runs it, and reports: usage errors exit with code 2, as is the custom for command
/// lines, and the other errors with 1. Messages go to stderr after `program: `.
pub async fn main<A, F>(
    program: &str,
    usage: &str,
    parse: impl FnOnce() -> Result<Option<A>, String>,
    run: impl FnOnce(A) -> F,
) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    match parse() {
        Ok(Some(args)) => exit_code(program, run(args).await),
        Ok(None) => {
            print!("{usage}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{program}: {message}");
            ExitCode::from(2)
        }
    }
}

/// The exit code for a finished run: success, or the error on stderr after `program: ` and
/// code 1.
pub fn exit_code(program: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::new(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn values_follow_their_flag() {
        let mut flags = flags(&["--db", "a.redb", "--orders", "7", "--fresh"]);
        assert_eq!(flags.next_flag().as_deref(), Some("--db"));
        assert_eq!(flags.value().unwrap(), "a.redb");
        assert_eq!(flags.next_flag().as_deref(), Some("--orders"));
        assert_eq!(flags.number::<u32>().unwrap(), 7);
        assert_eq!(flags.next_flag().as_deref(), Some("--fresh"));
        assert_eq!(flags.next_flag(), None);
    }

    #[test]
    fn errors_name_the_flag() {
        let mut flags = flags(&["--orders", "x", "--crash-after", "0", "--db"]);
        flags.next_flag();
        assert_eq!(
            flags.number::<u32>().unwrap_err(),
            "--orders takes a whole number, not `x`"
        );
        flags.next_flag();
        assert_eq!(
            flags.positive().unwrap_err(),
            "--crash-after must be at least 1"
        );
        flags.next_flag();
        assert_eq!(flags.value().unwrap_err(), "--db needs a value; see --help");
    }
}
