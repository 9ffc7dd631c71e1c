//! The deployment recipes in `deploy/`, parsed and held to what `docs/deployment.md` promises:
//! one instance over one redb file, probes and ports that match the server's defaults, stop
//! timeouts above the server's shutdown grace, hardening, and tokens never on a command line.
//!
//! Each checker returns the problems it finds, so the tests below also show that a broken
//! recipe (two replicas, a short stop timeout, a token in the arguments, a root user) is caught.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

/// The workspace root, where `deploy/` and `docs/` live.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ has a parent")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// How long the server waits for requests in flight after SIGTERM, by default.
fn shutdown_grace() -> Duration {
    weft_server::Limits::default().shutdown_grace
}

/// The port the server listens on by default, which every recipe keeps.
fn default_port() -> u16 {
    weft_server::DEFAULT_ADDRESS.port()
}

const DATA_DIR: &str = "/var/lib/weft";

/// Checks a server command line (flags only, without the program): every flag is one the
/// example server's usage documents, `--db` is in the data directory, `--listen` is on the
/// default port, and nothing on it is, names or expands a token.
fn check_command_line(args: &[String], problems: &mut Vec<String>) {
    let usage = read("examples/src/bin/server.rs");
    let mut db = None;
    let mut listen = None;
    for arg in args {
        let lower = arg.to_ascii_lowercase();
        if lower.contains("token") || arg.contains("$(") || arg.contains("${") {
            problems.push(format!(
                "`{arg}` on the command line: tokens come from the environment only"
            ));
        }
    }
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--insecure-no-auth" {
            problems.push("--insecure-no-auth: a deployed server must check tokens".into());
        }
        if !arg.starts_with("--") {
            continue;
        }
        if !usage.contains(&format!("  {arg} ")) {
            problems.push(format!("{arg} is not a flag of the example server"));
        }
        match arg.as_str() {
            "--db" => db = iter.next().cloned(),
            "--listen" => listen = iter.next().cloned(),
            _ => {}
        }
    }
    match db {
        Some(db) if Path::new(&db).parent() == Some(Path::new(DATA_DIR)) => {}
        other => problems.push(format!("--db {other:?} is not a file in {DATA_DIR}")),
    }
    match listen.as_deref().map(str::parse::<std::net::SocketAddr>) {
        Some(Ok(address)) if address.port() == default_port() => {}
        other => problems.push(format!(
            "--listen {listen:?} ({other:?}) is not on the server's default port {}",
            default_port()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

/// A systemd unit as `(section, key) -> values`, in the order they appear (a key may repeat).
type Unit = BTreeMap<(String, String), Vec<String>>;

/// Parses a unit file: `[Section]` headers, `Key=Value` lines, `#` and `;` comments, and
/// lines continued with a trailing backslash.
fn parse_unit(text: &str) -> Result<Unit, String> {
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    let mut pending = String::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: `{line}` is not Key=Value", number + 1));
        };
        let Some(section) = &section else {
            return Err(format!("line {}: a key before any [Section]", number + 1));
        };
        unit.entry((section.clone(), key.trim().to_string()))
            .or_default()
            .push(value.trim().to_string());
    }
    Ok(unit)
}

/// The last value of a key, which is the one systemd uses for a single-valued setting.
fn unit_value<'a>(unit: &'a Unit, section: &str, key: &str) -> Option<&'a str> {
    unit.get(&(section.to_string(), key.to_string()))
        .and_then(|values| values.last())
        .map(String::as_str)
}

/// Parses a systemd time span such as `30s`, `90`, `1min 30s` or `500ms`.
fn parse_timespan(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for part in text.split_whitespace() {
        let digits = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        let number: u64 = part[..digits].parse().ok()?;
        total += match &part[digits..] {
            "" | "s" | "sec" | "second" | "seconds" => Duration::from_secs(number),
            "ms" | "msec" => Duration::from_millis(number),
            "m" | "min" | "minute" | "minutes" => Duration::from_secs(number * 60),
            "h" | "hr" | "hour" | "hours" => Duration::from_secs(number * 3600),
            _ => return None,
        };
    }
    Some(total)
}

/// The hardening settings the unit must have, with the value each must hold.
const HARDENING: &[(&str, &str)] = &[
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("CapabilityBoundingSet", ""),
];

fn check_unit(file_name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if file_name.contains('@') {
        problems.push(format!(
            "{file_name} is a template: the redb shape runs one instance"
        ));
    }
    let unit = match parse_unit(text) {
        Ok(unit) => unit,
        Err(e) => return vec![e],
    };
    let service = |key: &str| unit_value(&unit, "Service", key);
    if service("Restart") != Some("on-failure") {
        problems.push(format!("Restart={:?}, not on-failure", service("Restart")));
    }
    if service("KillSignal") != Some("SIGTERM") {
        problems.push(format!(
            "KillSignal={:?}: the server drains on SIGTERM",
            service("KillSignal")
        ));
    }
    match service("TimeoutStopSec").map(parse_timespan) {
        Some(Some(stop)) if stop > shutdown_grace() => {}
        other => problems.push(format!(
            "TimeoutStopSec {other:?} is not above the server's shutdown grace {:?}",
            shutdown_grace()
        )),
    }
    for (key, expected) in HARDENING {
        if service(key) != Some(expected) {
            problems.push(format!("{key}={:?}, expected `{expected}`", service(key)));
        }
    }
    let writable = service("ReadWritePaths").unwrap_or_default();
    if !writable.split_whitespace().any(|path| path == DATA_DIR) {
        problems.push(format!(
            "ReadWritePaths={writable:?} lacks the data directory {DATA_DIR}"
        ));
    }
    if service("EnvironmentFile").is_none() {
        problems.push("no EnvironmentFile: the tokens need one".into());
    }
    for value in unit
        .get(&("Service".to_string(), "Environment".to_string()))
        .into_iter()
        .flatten()
    {
        if value.to_ascii_uppercase().contains("TOKEN") {
            problems.push(format!(
                "Environment={value}: tokens belong in the EnvironmentFile, not the unit"
            ));
        }
    }
    let exec: Vec<String> = service("ExecStart")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    match exec.split_first() {
        Some((_program, args)) => check_command_line(args, &mut problems),
        None => problems.push("no ExecStart".into()),
    }
    problems
}

#[test]
fn systemd_unit_restarts_on_failure_drains_within_its_stop_timeout_and_is_hardened() {
    let text = read("deploy/systemd/weft.service");
    assert_eq!(check_unit("weft.service", &text), Vec::<String>::new());
}

#[test]
fn systemd_checker_catches_a_short_stop_timeout_a_token_argument_and_a_missing_setting() {
    let text = read("deploy/systemd/weft.service");
    let short = text.replace("TimeoutStopSec=30s", "TimeoutStopSec=5s");
    assert!(
        check_unit("weft.service", &short)
            .iter()
            .any(|p| p.starts_with("TimeoutStopSec"))
    );
    let token = text.replace(
        "--listen 127.0.0.1:8080",
        "--listen 127.0.0.1:8080 --admin-token s3cret",
    );
    assert!(
        check_unit("weft.service", &token)
            .iter()
            .any(|p| p.contains("--admin-token") && p.contains("environment"))
    );
    let soft = text.replace("ProtectSystem=strict\n", "");
    assert!(
        check_unit("weft.service", &soft)
            .iter()
            .any(|p| p.starts_with("ProtectSystem"))
    );
    assert!(
        check_unit("weft@.service", &text)
            .iter()
            .any(|p| p.contains("template"))
    );
}

#[test]
fn systemd_timespans_parse_as_systemd_reads_them() {
    assert_eq!(parse_timespan("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_timespan("45"), Some(Duration::from_secs(45)));
    assert_eq!(parse_timespan("1min 30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_timespan("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_timespan("soon"), None);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// Every document of every file the kustomization lists, with the file it came from.
fn kubernetes_documents(kustomization: &str) -> Vec<(String, Yaml)> {
    let docs = YamlLoader::load_from_str(kustomization).expect("kustomization.yaml parses");
    let mut out = Vec::new();
    for resource in docs[0]["resources"]
        .as_vec()
        .expect("kustomization.yaml lists resources")
    {
        let name = resource.as_str().expect("a resource is a file name");
        let text = read(&format!("deploy/kubernetes/{name}"));
        for doc in YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("deploy/kubernetes/{name} does not parse: {e}"))
        {
            out.push((name.to_string(), doc));
        }
    }
    out
}

fn of_kind<'a>(docs: &'a [(String, Yaml)], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .map(|(_, doc)| doc)
        .filter(|doc| doc["kind"].as_str() == Some(kind))
        .collect()
}

/// Whether `selector` (a `matchLabels` map or a Service's `selector` map) selects `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    match selector.as_hash() {
        Some(wanted) if !wanted.is_empty() => wanted
            .iter()
            .all(|(k, v)| &labels[k.as_str().unwrap_or_default()] == v),
        _ => false,
    }
}

/// Resolves a probe's or a Service's port (a number or a container port's name).
fn resolve_port(port: &Yaml, container: &Yaml) -> Option<i64> {
    if let Some(number) = port.as_i64() {
        return Some(number);
    }
    let name = port.as_str()?;
    container["ports"]
        .as_vec()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_i64())
}

fn check_kubernetes(docs: &[(String, Yaml)]) -> Vec<String> {
    let mut problems = Vec::new();
    let port = i64::from(default_port());
    let grace = i64::try_from(shutdown_grace().as_secs()).expect("a grace of sane size");
    let sets = of_kind(docs, "StatefulSet");
    let [set] = sets.as_slice() else {
        return vec![format!("{} StatefulSets, expected exactly one", sets.len())];
    };
    let spec = &set["spec"];
    if spec["replicas"].as_i64() != Some(1) {
        problems.push(format!(
            "replicas {:?}, expected exactly 1",
            spec["replicas"]
        ));
    }
    let strategy = &spec["updateStrategy"];
    match strategy["type"].as_str() {
        Some("OnDelete") => {}
        Some("RollingUpdate") => {
            let rolling = &strategy["rollingUpdate"];
            if !matches!(rolling["maxUnavailable"], Yaml::BadValue | Yaml::Integer(1)) {
                problems.push("rollingUpdate.maxUnavailable other than 1".into());
            }
            if !matches!(rolling["partition"], Yaml::BadValue | Yaml::Integer(0)) {
                problems
                    .push("rollingUpdate.partition other than 0 leaves the pod un-updated".into());
            }
        }
        other => problems.push(format!("updateStrategy {other:?}")),
    }
    if spec["podManagementPolicy"].as_str() == Some("Parallel") {
        problems
            .push("podManagementPolicy Parallel may start a pod before the old one is gone".into());
    }
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    if !selects(&spec["selector"]["matchLabels"], labels) {
        problems.push("the StatefulSet's selector does not select its pods".into());
    }
    match pod["terminationGracePeriodSeconds"].as_i64() {
        Some(seconds) if seconds > grace => {}
        other => problems.push(format!(
            "terminationGracePeriodSeconds {other:?} is not above the shutdown grace {grace} s"
        )),
    }
    let Some([container]) = pod["containers"].as_vec().map(Vec::as_slice) else {
        problems.push("expected exactly one container".into());
        return problems;
    };
    let mut command: Vec<String> = Vec::new();
    for field in ["command", "args"] {
        for arg in container[field].as_vec().into_iter().flatten() {
            command.push(match arg {
                Yaml::String(s) => s.clone(),
                other => format!("{other:?}"),
            });
        }
    }
    check_command_line(&command, &mut problems);
    for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
        let get = &container[probe]["httpGet"];
        if get["path"].as_str() != Some(path) {
            problems.push(format!("{probe} path {:?}, expected {path}", get["path"]));
        }
        if resolve_port(&get["port"], container) != Some(port) {
            problems.push(format!("{probe} port {:?} is not {port}", get["port"]));
        }
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if container["resources"][kind][resource].is_badvalue() {
                problems.push(format!("no resources.{kind}.{resource}"));
            }
        }
    }
    let env = container["env"].as_vec().cloned().unwrap_or_default();
    let mut secret_tokens = 0;
    for var in &env {
        let name = var["name"].as_str().unwrap_or_default();
        if !name.contains("TOKEN") {
            continue;
        }
        if var["valueFrom"]["secretKeyRef"]["name"].as_str().is_some() {
            secret_tokens += 1;
        } else {
            problems.push(format!("{name} does not come from a Secret"));
        }
    }
    if secret_tokens == 0 {
        problems.push("no token comes from a Secret".into());
    }
    let claims = spec["volumeClaimTemplates"]
        .as_vec()
        .cloned()
        .unwrap_or_default();
    let mounted = container["volumeMounts"]
        .as_vec()
        .into_iter()
        .flatten()
        .any(|mount| {
            mount["mountPath"].as_str() == Some(DATA_DIR)
                && claims
                    .iter()
                    .any(|claim| claim["metadata"]["name"] == mount["name"])
        });
    if !mounted {
        problems.push(format!("no volume claim template is mounted at {DATA_DIR}"));
    }
    for claim in &claims {
        for mode in claim["spec"]["accessModes"].as_vec().into_iter().flatten() {
            if !matches!(mode.as_str(), Some("ReadWriteOncePod" | "ReadWriteOnce")) {
                problems.push(format!(
                    "access mode {mode:?} lets more than one pod mount the store"
                ));
            }
        }
    }
    let budgets = of_kind(docs, "PodDisruptionBudget");
    if !budgets
        .iter()
        .any(|pdb| selects(&pdb["spec"]["selector"]["matchLabels"], labels))
    {
        problems.push("no PodDisruptionBudget selects the pod".into());
    }
    let services = of_kind(docs, "Service");
    if !services.iter().any(|s| {
        s["metadata"]["name"] == spec["serviceName"]
            && s["spec"]["clusterIP"].as_str() == Some("None")
    }) {
        problems.push(format!(
            "serviceName {:?} is not a headless Service",
            spec["serviceName"]
        ));
    }
    for service in &services {
        if !selects(&service["spec"]["selector"], labels) {
            problems.push(format!(
                "Service {:?} does not select the pod",
                service["metadata"]["name"]
            ));
        }
        for service_port in service["spec"]["ports"].as_vec().into_iter().flatten() {
            if resolve_port(&service_port["targetPort"], container) != Some(port) {
                problems.push(format!(
                    "Service {:?} targets port {:?}, not {port}",
                    service["metadata"]["name"], service_port["targetPort"]
                ));
            }
        }
    }
    problems
}

fn kubernetes_with(file: &str, from: &str, to: &str) -> Vec<(String, Yaml)> {
    let original = read(&format!("deploy/kubernetes/{file}"));
    assert!(original.contains(from), "{file} has `{from}`");
    let changed = original.replace(from, to);
    kubernetes_documents(&read("deploy/kubernetes/kustomization.yaml"))
        .into_iter()
        .filter(|(name, _)| name != file)
        .chain(
            YamlLoader::load_from_str(&changed)
                .expect("the changed file parses")
                .into_iter()
                .map(|doc| (file.to_string(), doc)),
        )
        .collect()
}

#[test]
fn kubernetes_manifests_run_exactly_one_probed_pod_on_its_own_volume() {
    let docs = kubernetes_documents(&read("deploy/kubernetes/kustomization.yaml"));
    assert_eq!(check_kubernetes(&docs), Vec::<String>::new());
    // Every manifest in the folder is applied by the kustomization.
    let mut files: Vec<String> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .expect("deploy/kubernetes exists")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    files.sort();
    let mut listed: Vec<String> = docs.iter().map(|(name, _)| name.clone()).collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed, files);
}

#[test]
fn kubernetes_checker_catches_two_replicas_wrong_probes_a_short_grace_and_no_budget() {
    let cases = [
        ("statefulset.yaml", "replicas: 1", "replicas: 2", "replicas"),
        (
            "statefulset.yaml",
            "path: /ready",
            "path: /health",
            "readinessProbe path",
        ),
        (
            "statefulset.yaml",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 5",
            "terminationGracePeriodSeconds",
        ),
        (
            "statefulset.yaml",
            "- ReadWriteOncePod",
            "- ReadWriteMany",
            "access mode",
        ),
        (
            "statefulset.yaml",
            "- 0.0.0.0:8080",
            "- 0.0.0.0:$(WEFT_ADMIN_TOKEN)",
            "command line",
        ),
        (
            "pdb.yaml",
            "kind: PodDisruptionBudget",
            "kind: ConfigMap",
            "PodDisruptionBudget",
        ),
    ];
    for (file, from, to, expected) in cases {
        let problems = check_kubernetes(&kubernetes_with(file, from, to));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{file}: `{from}` -> `{to}` should report {expected:?}, got {problems:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Container image

/// One instruction of a Containerfile, with the build stage (0-based) it belongs to.
#[derive(Debug)]
struct Instruction {
    stage: usize,
    keyword: String,
    arguments: String,
}

/// Parses a Containerfile: comments, line continuations, one instruction per logical line.
fn parse_containerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut stage = None::<usize>;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        let logical = std::mem::take(&mut pending) + trimmed;
        let (keyword, arguments) = logical.split_once(' ').unwrap_or((&logical, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stage = Some(stage.map_or(0, |s| s + 1));
        }
        out.push(Instruction {
            stage: stage.unwrap_or(0),
            keyword,
            arguments: arguments.trim().to_string(),
        });
    }
    out
}

/// An exec-form (JSON array) argument list, as ENTRYPOINT, CMD and VOLUME take.
fn exec_form(arguments: &str) -> Option<Vec<String>> {
    serde_json::from_str(arguments).ok()
}

fn check_containerfile(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = parse_containerfile(text);
    let last = instructions.iter().map(|i| i.stage).max().unwrap_or(0);
    if last == 0 {
        problems.push("one stage: build and run stages should be separate".into());
    }
    let build = instructions
        .iter()
        .filter(|i| i.stage < last && i.keyword == "RUN")
        .any(|i| {
            i.arguments.contains("-p weft-examples --bin server")
                && i.arguments.contains("--locked")
        });
    if !build {
        problems.push("no earlier stage builds the example server with --locked".into());
    }
    let run: Vec<&Instruction> = instructions.iter().filter(|i| i.stage == last).collect();
    let find = |keyword: &str| {
        run.iter()
            .rev()
            .find(|i| i.keyword == keyword)
            .map(|i| i.arguments.as_str())
    };
    if !find("FROM").is_some_and(|from| from.contains("debian")) {
        problems.push(format!("the run stage is {:?}, not Debian", find("FROM")));
    }
    match find("USER") {
        Some(user) if !["root", "0"].contains(&user.split(':').next().unwrap_or_default()) => {}
        other => problems.push(format!("USER {other:?}: the server must not run as root")),
    }
    if !find("VOLUME")
        .and_then(exec_form)
        .is_some_and(|v| v.iter().any(|p| p == DATA_DIR))
    {
        problems.push(format!("no VOLUME for {DATA_DIR}"));
    }
    if find("EXPOSE") != Some(default_port().to_string().as_str()) {
        problems.push(format!(
            "EXPOSE {:?}, not {}",
            find("EXPOSE"),
            default_port()
        ));
    }
    if find("STOPSIGNAL").is_some_and(|signal| signal != "SIGTERM") {
        problems.push("STOPSIGNAL other than SIGTERM skips the drain".into());
    }
    // Nothing in the run stage fetches anything: no package manager, no download.
    for instruction in run.iter().filter(|i| i.keyword == "RUN") {
        for fetcher in ["apt-get", "apt ", "curl", "wget", "cargo"] {
            if instruction.arguments.contains(fetcher) {
                problems.push(format!(
                    "the run stage uses the network: RUN {}",
                    instruction.arguments
                ));
            }
        }
    }
    for instruction in run
        .iter()
        .filter(|i| i.keyword == "ENV" || i.keyword == "ARG")
    {
        if instruction.arguments.to_ascii_uppercase().contains("TOKEN") {
            problems.push(format!(
                "{} {}: tokens are given at run time",
                instruction.keyword, instruction.arguments
            ));
        }
    }
    match (
        find("ENTRYPOINT").and_then(exec_form),
        find("CMD").and_then(exec_form),
    ) {
        (Some(entrypoint), Some(cmd)) if entrypoint.len() == 1 => {
            check_command_line(&cmd, &mut problems)
        }
        other => problems.push(format!(
            "ENTRYPOINT and CMD should be exec form, the program then its flags: {other:?}"
        )),
    }
    problems
}

#[test]
fn containerfile_builds_the_server_in_one_stage_and_runs_it_unprivileged_in_another() {
    let text = read("deploy/container/Containerfile");
    assert_eq!(check_containerfile(&text), Vec::<String>::new());
}

#[test]
fn containerfile_checker_catches_root_a_wrong_port_and_a_download_at_run_time() {
    let text = read("deploy/container/Containerfile");
    let cases = [
        ("USER 10001:10001", "USER root", "USER"),
        ("EXPOSE 8080", "EXPOSE 9090", "EXPOSE"),
        (
            "COPY --from=build",
            "RUN apt-get update\nCOPY --from=build",
            "network",
        ),
        (
            "\"0.0.0.0:8080\"",
            "\"0.0.0.0:8080\", \"--admin-token\", \"x\"",
            "command line",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(text.contains(from), "the Containerfile has `{from}`");
        let problems = check_containerfile(&text.replace(from, to));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "`{from}` -> `{to}` should report {expected:?}, got {problems:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The guide

#[test]
fn deployment_guide_covers_every_recipe_and_the_one_replica_rule() {
    let guide = read("docs/deployment.md");
    for path in [
        "deploy/systemd/weft.service",
        "deploy/kubernetes/",
        "deploy/container/Containerfile",
        "/health",
        "/ready",
        "fenc",
        "epoch",
    ] {
        assert!(
            guide.contains(path),
            "docs/deployment.md does not mention {path}"
        );
    }
}
