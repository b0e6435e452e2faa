//! A scripted HTTP/1.1 server on 127.0.0.1 for unit tests: answers each request with
//! the next scripted response (the last one repeats) and records what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
        delay: Duration,
    },
    /// Closes the connection without answering.
    Drop,
    /// Writes these bytes as they are (a head and a body cut short, broken chunking),
    /// then closes the connection.
    Raw(String),
    /// Answers with this status and an OAuth error whose `error_description` is the
    /// request as received, head and body: a server that echoes its input.
    Echo(u16),
}

pub fn json(status: u16, body: &str) -> Reply {
    Reply::Json {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

impl Reply {
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Reply::Json { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    pub fn delayed(mut self, by: Duration) -> Self {
        if let Reply::Json { delay, .. } = &mut self {
            *delay = by;
        }
        self
    }
}

/// A request as received: the head (request line and headers) and the body.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: String,
}

pub struct TestServer {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    /// Starts serving `script` on a free loopback port.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_with(|_| script).await
    }

    /// Like `start`, for scripts that must name the server's own URL.
    pub async fn start_with(script: impl FnOnce(&str) -> Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = script(&url);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            let mut served = 0usize;
            while let Ok((mut socket, _)) = listener.accept().await {
                let reply = script[served.min(script.len() - 1)].clone();
                served += 1;
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    log.lock().unwrap().push(request.clone());
                    let reply = match reply {
                        Reply::Echo(status) => echo(status, &request),
                        other => other,
                    };
                    match reply {
                        Reply::Json {
                            status,
                            headers,
                            body,
                            delay,
                        } => {
                            tokio::time::sleep(delay).await;
                            let mut head = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                                 content-length: {}\r\nconnection: close\r\n",
                                body.len()
                            );
                            for (name, value) in headers {
                                head.push_str(&format!("{name}: {value}\r\n"));
                            }
                            head.push_str("\r\n");
                            let _ = socket.write_all(head.as_bytes()).await;
                            let _ = socket.write_all(body.as_bytes()).await;
                        }
                        Reply::Raw(bytes) => {
                            let _ = socket.write_all(bytes.as_bytes()).await;
                        }
                        Reply::Drop | Reply::Echo(_) => {}
                    }
                });
            }
        });
        Self { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The path of each request received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.head.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect()
    }
}

/// An OAuth error that quotes `request` whole, on one line (as a message shows only the
/// first line of a description).
fn echo(status: u16, request: &Received) -> Reply {
    let head = request.head.replace("\r\n", "; ");
    let description = format!("received {} with {head}", request.body);
    let body = serde_json::json!({ "error": "invalid_client", "error_description": description });
    json(status, &body.to_string())
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string();
                return Some(Received { head, body });
            }
        }
    }
}

/// The package's own HTTP client as the tests send with it: a 5-second timeout, no proxy.
pub fn http_client() -> reqwest::Client {
    crate::protocol::http::client(&crate::protocol::http::ClientSettings {
        timeout: Duration::from_secs(5),
        proxy: None,
    })
    .expect("an HTTP client")
}
