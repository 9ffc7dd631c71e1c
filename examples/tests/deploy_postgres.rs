//! The Kubernetes recipe for Weft on PostgreSQL (`deploy/kubernetes-postgres`), parsed and held
//! to what `docs/cluster.md` promises: a Deployment of engine processes (one replica while one
//! engine owns a store whole), the database URL from a Secret and never in the manifest,
//! readiness on `/ready` and liveness on `/health` (which never touches the database), a
//! rollout that starts the new pod before stopping the old, and a Service that reaches the pods.
//!
//! The checker returns the problems it finds, so the last test also shows that a broken recipe
//! (two replicas, readiness on `/health`, a URL written into the manifest) is caught.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

const DIR: &str = "deploy/kubernetes-postgres";

/// The environment variable the example server reads the database URL from.
const URL_VARIABLE: &str = "WEFT_DATABASE_URL";

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

/// Every document of every file the kustomization lists, with its file; `changed` replaces one
/// file's text (to show the checker catches a broken recipe).
fn documents(changed: Option<(&str, &str, &str)>) -> Vec<(String, Yaml)> {
    let kustomization = YamlLoader::load_from_str(&read(&format!("{DIR}/kustomization.yaml")))
        .expect("kustomization.yaml parses");
    let mut out = Vec::new();
    for resource in kustomization[0]["resources"]
        .as_vec()
        .expect("kustomization.yaml lists resources")
    {
        let name = resource.as_str().expect("a resource is a file name");
        let mut text = read(&format!("{DIR}/{name}"));
        if let Some((file, from, to)) = changed
            && file == name
        {
            assert!(text.contains(from), "{file} has `{from}`");
            text = text.replace(from, to);
        }
        for doc in YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{DIR}/{name} does not parse: {e}"))
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

/// Whether a `matchLabels` or Service `selector` map selects `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    match selector.as_hash() {
        Some(wanted) if !wanted.is_empty() => wanted
            .iter()
            .all(|(k, v)| &labels[k.as_str().unwrap_or_default()] == v),
        _ => false,
    }
}

/// The probe's path, if it is an HTTP GET on the container's `http` port.
fn probe_path<'a>(container: &'a Yaml, probe: &str) -> Option<&'a str> {
    let get = &container[probe]["httpGet"];
    let port_ok = get["port"].as_str() == Some("http")
        || get["port"].as_i64() == container["ports"][0]["containerPort"].as_i64();
    port_ok.then(|| get["path"].as_str()).flatten()
}

/// What is wrong with the recipe; empty when it holds.
fn check(docs: &[(String, Yaml)]) -> Vec<String> {
    let mut problems = Vec::new();
    let deployments = of_kind(docs, "Deployment");
    if deployments.len() != 1 {
        problems.push(format!("{} Deployments, expected 1", deployments.len()));
        return problems;
    }
    if !of_kind(docs, "StatefulSet").is_empty()
        || !of_kind(docs, "PersistentVolumeClaim").is_empty()
    {
        problems.push(
            "the engine pods keep no state of their own: no StatefulSet or volume claim".into(),
        );
    }
    let deployment = deployments[0];
    let spec = &deployment["spec"];
    // One engine owns a store whole until partition leases exist: a second replica on the same
    // schema fences the first instead of sharing the work.
    if spec["replicas"].as_i64() != Some(1) {
        problems.push(format!(
            "replicas is {:?}: one engine owns a store today, so exactly 1",
            spec["replicas"]
        ));
    }
    let rolling = &spec["strategy"]["rollingUpdate"];
    if spec["strategy"]["type"].as_str() != Some("RollingUpdate")
        || rolling["maxUnavailable"].as_i64() != Some(0)
        || rolling["maxSurge"].as_i64() != Some(1)
    {
        problems.push("the rollout must start the new pod before stopping the old (maxSurge 1, maxUnavailable 0)".into());
    }
    let template = &spec["template"];
    if !selects(
        &spec["selector"]["matchLabels"],
        &template["metadata"]["labels"],
    ) {
        problems.push("the Deployment's selector does not select its pods".into());
    }
    let containers = template["spec"]["containers"]
        .as_vec()
        .cloned()
        .unwrap_or_default();
    let Some(container) = containers.first() else {
        problems.push("no container".into());
        return problems;
    };
    // The database URL: from a Secret, never written in the manifest or on the command line.
    let env = container["env"].as_vec().cloned().unwrap_or_default();
    match env
        .iter()
        .find(|e| e["name"].as_str() == Some(URL_VARIABLE))
    {
        None => problems.push(format!("no {URL_VARIABLE} in the container's environment")),
        Some(var) => {
            let secret = &var["valueFrom"]["secretKeyRef"];
            if var["value"].as_str().is_some()
                || secret["name"].as_str().is_none()
                || secret["key"].as_str().is_none()
            {
                problems.push(format!(
                    "{URL_VARIABLE} must come from a Secret (valueFrom.secretKeyRef)"
                ));
            }
            if secret["optional"].as_bool() == Some(true) {
                problems.push(format!(
                    "{URL_VARIABLE} must not be optional: without it the server would fall back to a local file"
                ));
            }
        }
    }
    let args = container["args"].as_vec().cloned().unwrap_or_default();
    if args
        .iter()
        .filter_map(Yaml::as_str)
        .any(|a| a.contains("postgres") || a.contains("password"))
    {
        problems.push("a database URL or password on the command line".into());
    }
    if probe_path(container, "readinessProbe") != Some("/ready") {
        problems.push("readinessProbe path must be /ready on the http port".into());
    }
    // Liveness must not depend on the database: an outage would get the engine restarted.
    if probe_path(container, "livenessProbe") != Some("/health") {
        problems.push("livenessProbe path must be /health on the http port".into());
    }
    let services = of_kind(docs, "Service");
    if !services
        .iter()
        .any(|s| selects(&s["spec"]["selector"], &template["metadata"]["labels"]))
    {
        problems.push("no Service selects the engine pods".into());
    }
    problems
}

#[test]
fn the_postgres_recipe_runs_one_probed_engine_with_its_url_from_a_secret() {
    let docs = documents(None);
    assert_eq!(check(&docs), Vec::<String>::new());
    // Every manifest in the folder is applied by the kustomization.
    let mut files: Vec<String> = std::fs::read_dir(root().join(DIR))
        .expect("the folder exists")
        .map(|entry| {
            entry
                .expect("an entry")
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
    // The server reads the variable the recipe sets, and the docs name the Secret it uses.
    assert!(read("examples/src/bin/server.rs").contains(&format!("\"{URL_VARIABLE}\"")));
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_vec()
        .unwrap();
    let url = env
        .iter()
        .find(|e| e["name"].as_str() == Some(URL_VARIABLE))
        .unwrap();
    let secret = url["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap();
    assert!(read("docs/cluster.md").contains(&format!("kubectl create secret generic {secret}")));
}

#[test]
fn the_checker_catches_two_replicas_a_database_probe_and_a_written_url() {
    let cases = [
        ("deployment.yaml", "replicas: 1", "replicas: 2", "replicas"),
        (
            "deployment.yaml",
            "path: /ready",
            "path: /health",
            "readinessProbe",
        ),
        (
            "deployment.yaml",
            "              path: /health\n              port: http\n            periodSeconds: 10",
            "              path: /ready\n              port: http\n            periodSeconds: 10",
            "livenessProbe",
        ),
        (
            "deployment.yaml",
            "              valueFrom:\n                secretKeyRef:\n                  name: weft-database\n                  key: url",
            "              value: postgresql://weft:secret@db/weft",
            "Secret",
        ),
        (
            "deployment.yaml",
            "maxUnavailable: 0",
            "maxUnavailable: 1",
            "rollout",
        ),
        (
            "service.yaml",
            "app.kubernetes.io/name: weft\n  ports",
            "app.kubernetes.io/name: other\n  ports",
            "Service",
        ),
    ];
    for (file, from, to, expected) in cases {
        let problems = check(&documents(Some((file, from, to))));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "changing `{from}` to `{to}` in {file}: expected a problem naming {expected}, got {problems:?}"
        );
    }
}
