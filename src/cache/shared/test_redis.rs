//! A real `redis-server` for tests: started on a free 127.0.0.1 port with persistence
//! off, stopped by its pid when the guard drops (also when the test panics).
//!
//! `REDIS_SERVER` names another server binary (Valkey's, in CI). The tests that need one
//! carry `#[cfg_attr(not(has_redis), ignore = "…")]`: build.rs sets `has_redis` when the
//! server runs on the machine, or when `CI` is set (a missing server must then fail the
//! tests). Without it they show as ignored, with how to run them, never as passed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary: `REDIS_SERVER` (Valkey's `valkey-server`, say), or `redis-server`.
fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// A server on a free port; panics when `redis-server` is absent.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            match Self::start_on(port) {
                Some(Ok(server)) => return server,
                Some(Err(())) => continue,
                None => missing(),
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A server on `port` (a restart after `stop`); `None` when absent, `Err` when it
    /// did not answer PING within 5 s (the port was taken, say).
    pub fn start_on(port: u16) -> Option<Result<Self, ()>> {
        Self::start_with(port, &[])
    }

    /// `start_on` with more arguments for redis-server.
    fn start_with(port: u16, extra: &[&str]) -> Option<Result<Self, ()>> {
        let dir = std::env::temp_dir().join(format!("obo-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let spawned = Command::new(binary())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(["--loglevel", "warning"])
            .args(extra)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot run {}: {e}", binary()),
        };
        let mut server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if server.ping() {
                return Some(Ok(server));
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
        Some(Err(()))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that accepts
    /// connections but never answers, the slow case.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Kills the server by its pid and waits for it.
    pub fn stop(&mut self) {
        // SIGKILL also ends a frozen server.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A three-primary Redis Cluster on free loopback ports, made with `redis-cli --cluster
/// create`; every node is stopped by its pid when the guard drops.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// The cluster; panics when `redis-server` is absent.
    pub fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..10 {
            if nodes.len() == 3 {
                break;
            }
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            // The cluster bus listens on port + 10000.
            if port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
                continue;
            }
            let file = format!("nodes-{port}.conf");
            let flags = ["--cluster-enabled", "yes", "--cluster-config-file", &file];
            match RedisServer::start_with(port, &flags) {
                Some(Ok(node)) => nodes.push(node),
                Some(Err(())) => continue,
                None => missing(),
            }
        }
        assert_eq!(nodes.len(), 3, "three cluster nodes started");
        let cluster = Self { nodes };
        cluster.create();
        cluster
    }

    /// `redis-cli --cluster create`, then waits (bounded) until every node says ok.
    fn create(&self) {
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs (Debian's redis-tools, installed with redis-server)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.nodes.iter().all(RedisServer::cluster_ok) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not reach cluster_state:ok within 10 s");
    }

    /// The seed URLs, comma-separated, as `sharedCache.url` takes them.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }
}

impl RedisServer {
    fn cluster_ok(&self) -> bool {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "cluster", "info"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
    }
}

/// A test that needs Redis found none: build.rs saw one at build time (or `CI` is set).
fn missing() -> ! {
    panic!(
        "{} is missing: these tests need Debian's redis-server on the PATH \
         (apt-get install -y --no-install-recommends redis-server), or REDIS_SERVER set",
        binary()
    )
}
