//! The arrows that must never exist in the crate graph (ARCHITECTURE.md), read from
//! `cargo metadata`: a port importing a driver, the API or the pages importing the pipeline,
//! the core importing anything with IO, and any crate but the app naming a driver.
//!
//! Only normal dependencies count: tests may use whatever they need.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The workspace's crate graph: package names, and each package's normal dependencies.
struct Graph {
    names: HashMap<String, String>,
    deps: HashMap<String, Vec<String>>,
}

impl Graph {
    fn read() -> Graph {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let output = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(&root)
            .output()
            .expect("run cargo metadata");
        assert!(
            output.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let names = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let deps = metadata["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let normal = node["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| {
                        d["dep_kinds"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|k| k["kind"].is_null())
                    })
                    .map(|d| d["pkg"].as_str().unwrap().to_string())
                    .collect();
                (node["id"].as_str().unwrap().to_string(), normal)
            })
            .collect();
        Graph { names, deps }
    }

    /// The id of the workspace package `name`.
    fn id(&self, name: &str) -> &str {
        let ids: Vec<&String> = self
            .names
            .iter()
            .filter(|(id, n)| *n == name && id.starts_with("path+"))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids.len(), 1, "one package named {name}: {ids:?}");
        ids[0]
    }

    /// The names of every package `name` depends on, directly or not, at run time.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id(name).to_string()];
        while let Some(id) = todo.pop() {
            for dep in self.deps.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }

    /// Fails, naming the arrows, when `from` reaches any of `forbidden`.
    fn assert_never(&self, from: &str, forbidden: &[&str], why: &str) {
        let reached = self.closure(from);
        let found: Vec<&&str> = forbidden.iter().filter(|f| reached.contains(**f)).collect();
        assert!(found.is_empty(), "{from} depends on {found:?}: {why}");
    }
}

/// The drivers of the ports, and the IO libraries they wrap.
const DRIVERS: &[&str] = &[
    "upwatch-bus-kafka",
    "upwatch-cache-redis",
    "upwatch-store-sql",
    "sqlx",
    "upwatch-notifiers",
    "rdkafka",
    "rdkafka-sys",
    "redis",
    "deadpool-redis",
];

#[test]
fn the_crate_graph_has_none_of_the_forbidden_arrows() {
    let graph = Graph::read();
    graph.assert_never(
        "upwatch-core",
        &[
            "tokio", "sqlx", "redis", "rdkafka", "reqwest", "hyper", "axum",
        ],
        "the core is pure: no IO, no async runtime",
    );
    for port in [
        "upwatch-bus",
        "upwatch-cache",
        "upwatch-store",
        "upwatch-notify",
    ] {
        graph.assert_never(port, DRIVERS, "a port never imports a driver");
    }
    for consumer in [
        "upwatch-api",
        "upwatch-web",
        "upwatch-pipeline",
        "upwatch-notify",
        "upwatch-service",
    ] {
        graph.assert_never(
            consumer,
            DRIVERS,
            "only upwatch-app names the drivers; the rest sees the ports",
        );
    }
    for reader in ["upwatch-api", "upwatch-web"] {
        graph.assert_never(
            reader,
            &["upwatch-pipeline"],
            "the API and the pages never import the pipeline's roles",
        );
    }
    // The checks above would pass on a graph read wrongly: the app does reach the drivers.
    let app = graph.closure("upwatch-app");
    assert!(
        app.contains("upwatch-bus-kafka")
            && app.contains("rdkafka")
            && app.contains("upwatch-store-sql")
            && app.contains("sqlx"),
        "{app:?}"
    );
}
