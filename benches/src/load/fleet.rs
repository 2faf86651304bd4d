//! The upwatch processes under test: started from the `upwatch` binary with an environment,
//! logging JSON to a file each, stopped with SIGTERM so that they drain.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::prom::Scrape;

/// Variables the processes must not inherit from the bench's environment.
const OWN_VARIABLES: [&str; 5] = [
    "DATABASE_URL",
    "DISCORD_WEBHOOK_URL",
    "SITES_TO_MONITOR",
    "KAFKA_BROKERS",
    "REDIS_URL",
];

/// How to start upwatch processes: the binary, the environment, where logs go.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub bin: PathBuf,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
}

impl Launcher {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("UPWATCH_") || OWN_VARIABLES.contains(&key.as_str()) {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--log-format")
            .arg("json")
            .args(args);
        cmd
    }

    /// Runs a one-shot command (`migrate`, `import FILE`) to its end.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(args)
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "upwatch {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Starts `upwatch <role> --listen 127.0.0.1:0` (a free port, for `/metrics`).
    pub fn spawn(&self, role: &str, name: &str) -> anyhow::Result<Proc> {
        self.spawn_with(role, name, &[])
    }

    /// Starts `upwatch <role>` as [`Launcher::spawn`] does, with `env` over the launcher's.
    pub fn spawn_with(&self, role: &str, name: &str, env: &[(&str, &str)]) -> anyhow::Result<Proc> {
        let log = self.dir.join(format!("{name}.log"));
        let file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = self
            .command(&[role, "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        tracing::info!(name, pid = child.id(), log = %log.display(), "started upwatch {role}");
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
            listen: None,
        })
    }
}

/// One running upwatch process.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
    /// The HTTP address, once it is running.
    pub listen: Option<SocketAddr>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Each JSON log line.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first log line with `message`.
    pub fn logged(&self, message: &str) -> Option<serde_json::Value> {
        self.log_lines()
            .into_iter()
            .find(|l| l["message"].as_str() == Some(message))
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits for the "upwatch is running" line and returns the HTTP address.
    pub async fn wait_running(&mut self, within: Duration) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.logged("upwatch is running") {
                let addr: SocketAddr = line["listen"]
                    .as_str()
                    .context("no listen address in the start line")?
                    .parse()?;
                self.listen = Some(addr);
                return Ok(addr);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}:\n{}", self.name, self.tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within {within:?}:\n{}",
                    self.name,
                    self.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a log line has `message`.
    pub async fn wait_logged(&mut self, message: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if self.logged(message).is_some() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}:\n{}", self.name, self.tail());
            }
            if Instant::now() > deadline {
                bail!("{} did not log `{message}` within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails when the process has exited.
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}:\n{}", self.name, self.tail());
        }
        Ok(())
    }

    /// Sends SIGTERM (the process drains and exits).
    pub fn terminate(&self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads this process's `/metrics`.
    pub async fn scrape(&self, client: &reqwest::Client) -> anyhow::Result<Scrape> {
        let addr = self.listen.context("the process is not running yet")?;
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Scrape::parse(&text))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1 (for a broker the bench starts).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `addr`.
pub async fn wait_port(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listens on {addr} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
