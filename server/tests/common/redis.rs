//! A real `redis-server` (Debian's package, installed by scripts/bootstrap.sh) on a free
//! loopback port, stopped by its PID when dropped. No persistence unless asked.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Append-only file directory, for a server that must survive a restart.
    aof_dir: Option<PathBuf>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::launch(free_port(), None)
    }

    /// With an append-only file in `dir` (fsync always), so a restart loses nothing.
    pub fn start_persistent(dir: &Path) -> Self {
        Self::launch(free_port(), Some(dir.to_owned()))
    }

    fn launch(port: u16, aof_dir: Option<PathBuf>) -> Self {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        cmd.args(["--daemonize", "no"]);
        match &aof_dir {
            Some(dir) => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"]);
                cmd.arg(dir);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/bootstrap.sh installs it)");
        let server = Self {
            port,
            child: Some(child),
            aof_dir,
        };
        // Readiness, not timing: poll until it answers PING.
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < deadline, "redis-server answers PING");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Stops it (SIGTERM, by its PID) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (and append-only file).
    pub fn restart(&mut self) {
        self.stop();
        let again = Self::launch(self.port, self.aof_dir.clone());
        *self = again;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against it; its trimmed output, or `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// A free loopback port below 55000: a cluster node also binds its bus on port + 10000.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if port < 55000 {
            return port;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Redis Cluster of 3 masters (no replicas) on free loopback ports, each node with its
/// cluster state in `dir`; stopped by their PIDs when dropped.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Child>,
}

impl RedisCluster {
    pub fn start(dir: &Path) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut children = Vec::new();
        for port in &ports {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            children.push(child);
        }
        let cluster = Self { ports, children };
        for port in &cluster.ports {
            wait_for(*port, &["PING"], "PONG");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(created.status.success(), "{:?}", created);
        for port in &cluster.ports {
            wait_for_line(*port, &["CLUSTER", "INFO"], "cluster_state:ok");
        }
        cluster
    }

    /// The `--store` value naming every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cli_at(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn wait_for(port: u16, args: &[&str], answer: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli_at(port, args).as_deref() != Some(answer) {
        assert!(
            Instant::now() < deadline,
            "redis on {port} answers {answer}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_line(port: u16, args: &[&str], line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cli_at(port, args).is_some_and(|out| out.lines().any(|l| l.trim() == line)) {
        assert!(Instant::now() < deadline, "redis on {port} reports {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx (Debian's package) on a free loopback port, round-robin over `upstreams`, run in
/// the foreground from its own prefix directory and stopped by its PID when dropped.
pub struct Nginx {
    pub port: u16,
    child: Child,
}

impl Nginx {
    pub fn start(dir: &Path, upstreams: &[std::net::SocketAddr]) -> Self {
        Self::start_on(dir, free_port(), upstreams)
    }

    pub fn start_on(dir: &Path, port: u16, upstreams: &[std::net::SocketAddr]) -> Self {
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        // The same configuration as the browser tests' nginx (tests/e2e/helpers/shared.mjs).
        let conf = include_str!("../../../tests/nginx-round-robin.conf")
            .replace("@DIR@", &dir.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@SERVERS@", servers.trim_end());
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf written");
        let nginx = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (scripts/bootstrap.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx listens on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master, which stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
