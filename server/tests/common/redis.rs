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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
