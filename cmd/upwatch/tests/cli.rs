//! The real `upwatch` binary, as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upwatch_testkit::target::TargetServer;

fn upwatch() -> Command {
    clean(Command::new(env!("CARGO_BIN_EXE_upwatch")))
}

/// `cmd` without the developer's own upwatch settings.
fn clean(mut cmd: Command) -> Command {
    // Keep the tests independent of the developer's own environment and .env file.
    for (key, _) in std::env::vars() {
        if key.starts_with("UPWATCH_")
            || ["DATABASE_URL", "DISCORD_WEBHOOK_URL", "SITES_TO_MONITOR"].contains(&key.as_str())
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

// The binary blocks this thread while it runs, so the target needs a runtime thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_the_outcome_and_exits_by_status() {
    let target = TargetServer::start().await;
    let up = upwatch()
        .arg("check")
        .arg(target.url("/ok"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(up.status.success(), "{stdout}");
    assert!(
        stdout.contains("status:  up") && stdout.contains("code:    200"),
        "{stdout}"
    );

    let down = upwatch()
        .arg("check")
        .arg(target.url("/status/503"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("status_mismatch: got HTTP 503"), "{stdout}");

    let bad = upwatch()
        .arg("check")
        .arg("ftp://example.com")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("http, https, tcp, tls, icmp or dns"));
}

#[test]
fn invalid_configuration_names_the_variable() {
    let out = upwatch()
        .arg("serve")
        .env("UPWATCH_WORKERS", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UPWATCH_WORKERS") && stderr.contains("whole number"),
        "{stderr}"
    );
}

#[test]
fn serve_answers_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve_in(dir.path());
    let listen = base.trim_start_matches("http://");
    let health = std::net::TcpStream::connect(listen).map(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    });
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "upwatch did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
}

/// A CA file that cannot be read stops the checker before any check, naming the variable.
#[test]
fn an_unreadable_ca_file_is_refused_naming_the_variable() {
    let out = upwatch()
        .env("UPWATCH_CHECK_CA_FILE", "/nonexistent/upwatch-ca.pem")
        .arg("check")
        .arg("tcp://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UPWATCH_CHECK_CA_FILE: cannot read /nonexistent/upwatch-ca.pem"),
        "{stderr}"
    );
}

/// `upwatch check` runs any check type: a refused TCP port is down with its kind.
#[test]
fn check_runs_other_types_too() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = upwatch()
        .arg("check")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "down exits 1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("connect: connection refused by 127.0.0.1:"),
        "{stdout}"
    );
}

/// `upwatch serve` on a free port over a fresh SQLite database in `dir`; returns the process
/// and the API's base URL.
fn serve_in(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = upwatch()
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--log-format")
        .arg("json")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("upwatch.db").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("upwatch is running") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server starts");
    let listen = line
        .split("\"listen\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (child, format!("http://{listen}"))
}

/// Stops a server started by [`serve_in`] as systemd would, and waits for it.
fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("upwatch did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A deploy script starts a maintenance window through a running server's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_start_opens_a_window_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = serve_in(dir.path());
    let client = reqwest::Client::new();
    let monitor: serde_json::Value = client
        .post(format!("{api}/api/v1/sites"))
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/", "name": "deployed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = monitor["id"]
        .as_str()
        .expect("the monitor's id")
        .to_string();

    let out = upwatch()
        .args(["maintenance", "start", "--monitor", &id, "--for", "30m"])
        .args(["--title", "Deploy", "--api", &api])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = client
        .get(format!("{api}/api/v1/maintenances"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    let window = &items[0];
    assert_eq!(window["active"], true, "{window}");
    assert_eq!(window["title"], "Deploy");
    assert_eq!(window["monitor_ids"], serde_json::json!([id]));
    let start: chrono::DateTime<chrono::Utc> = window["start"].as_str().unwrap().parse().unwrap();
    let end: chrono::DateTime<chrono::Utc> = window["end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, chrono::TimeDelta::minutes(30));
    assert!(
        stdout.contains(window["id"].as_str().unwrap())
            && stdout.contains(window["end"].as_str().unwrap()),
        "prints the id and the end: {stdout}"
    );

    // The API refuses an unknown monitor: exit 1 with its reason.
    let unknown = uuid::Uuid::now_v7().to_string();
    let out = upwatch()
        .args([
            "maintenance",
            "start",
            "--monitor",
            &unknown,
            "--for",
            "30m",
        ])
        .env("UPWATCH_API_URL", &api)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("monitor_ids") && stderr.contains(&unknown),
        "{stderr}"
    );

    // Bad arguments: exit 2, before any request.
    for args in [
        vec!["--monitor", id.as_str(), "--for", "soon"],
        vec!["--for", "30m"],
        vec!["--monitor", "not-an-id", "--for", "30m"],
    ] {
        let out = upwatch()
            .args(["maintenance", "start"])
            .args(&args)
            .args(["--api", &api])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    stop(server);
}

/// ICMP checks where this process may open no ICMP socket: `upwatch check` runs with
/// `CAP_NET_RAW` dropped (root) or without it (any other user). Unless the kernel lets the
/// process's group open unprivileged datagram sockets (`net.ipv4.ping_group_range`), the check
/// is down with its own kind and a reason in plain words, never a panic; when it does, the
/// datagram socket answers and the check is up.
#[test]
fn icmp_without_raw_sockets_is_down_with_its_reason_or_uses_datagrams() {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let mut cmd = if id("-u") == 0 {
        let mut cmd = clean(Command::new("setpriv"));
        cmd.args([
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            "--ambient-caps=-net_raw",
        ])
        .arg(env!("CARGO_BIN_EXE_upwatch"));
        cmd
    } else {
        upwatch()
    };
    let out = cmd.arg("check").arg("icmp://127.0.0.1").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let bounds: Vec<u32> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let gid = id("-g");
    if bounds[0] <= gid && gid <= bounds[1] {
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("status:  up"), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(
                "error:   icmp_unavailable: this process may open neither unprivileged ICMP \
                 sockets (net.ipv4.ping_group_range) nor raw ones (CAP_NET_RAW)"
            ),
            "{stdout}"
        );
    }
}
