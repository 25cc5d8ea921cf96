//! The load generator the serving benchmarks share: N keep-alive HTTP/1.1 connections on
//! loopback, each sending one request, reading the whole answer, and sending the next,
//! for a fixed time.
//!
//! It speaks just enough HTTP/1.1 for the servers it measures (a status line, headers, a
//! `Content-Length` body) over plain tokio sockets, so that the client costs far less CPU
//! than the servers on a machine where both share the same cores; a general client
//! (reqwest, hyper) spends about as much per request as the server under test and would
//! hide the differences between servers. Anything else (chunked coding, a short read, a
//! non-200 status) counts as an error, and the connection is reopened.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response header block accepted, a bound on a misbehaving server.
const MAX_HEADER: usize = 64 * 1024;

/// The outcome of one load phase.
pub struct Phase {
    pub requests: usize,
    pub errors: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1000.0
    }

    /// One line: rate, p50, p99, max, counts, mean body size.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} requests, {} errors, {:.1} KB mean body",
            self.rate(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            self.requests,
            self.errors,
            self.bytes as f64 / self.requests.max(1) as f64 / 1024.0,
        )
    }
}

/// A GET request for `path_and_query` with the headers the CVO's Go client sends
/// (`Accept: application/json`, and `Accept-Encoding: gzip` when `gzip`).
pub fn get(path_and_query: &str, gzip: bool) -> Vec<u8> {
    let encoding = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pe-bench\r\nAccept: application/json\r\n{encoding}\r\n"
    )
    .into_bytes()
}

/// Drives `connections` connections at `addr` for `duration`, each sending the requests
/// of `requests` in turn (shared rotation), and waits for them all.
pub async fn run(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    duration: Duration,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<TcpStream> = None;
            let mut buf = vec![0u8; 256 * 1024];
            let (mut latencies, mut errors, mut bytes) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let request = &requests[next.fetch_add(1, Ordering::Relaxed) % requests.len()];
                let t0 = Instant::now();
                if conn.is_none() {
                    conn = TcpStream::connect(addr).await.ok();
                    if let Some(c) = &conn {
                        let _ = c.set_nodelay(true);
                    }
                }
                let outcome = match conn.as_mut() {
                    Some(stream) => exchange(stream, request, &mut buf).await,
                    None => Err("connect"),
                };
                latencies.push(t0.elapsed());
                match outcome {
                    Ok((200, body, keep_alive)) => {
                        bytes += body;
                        if !keep_alive {
                            conn = None;
                        }
                    }
                    Ok(_) | Err(_) => {
                        errors += 1;
                        conn = None;
                        // A refused connection would otherwise spin.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            (latencies, errors, bytes)
        }));
    }
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors, bytes) = task.await.expect("load task");
        phase.requests += latencies.len();
        phase.errors += errors;
        phase.bytes += bytes;
        phase.latencies.extend(latencies);
    }
    phase.elapsed = start.elapsed();
    phase.latencies.sort_unstable();
    phase
}

/// Sends one request and reads its answer: (status, body length, keep-alive).
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut [u8],
) -> Result<(u16, usize, bool), &'static str> {
    stream.write_all(request).await.map_err(|_| "write")?;
    // Read until the end of the header block.
    let mut filled = 0;
    let limit = buf.len().min(MAX_HEADER);
    let header_end = loop {
        if filled == limit {
            return Err("header too large");
        }
        let n = stream
            .read(&mut buf[filled..limit])
            .await
            .map_err(|_| "read")?;
        if n == 0 {
            return Err("closed");
        }
        let from = filled.saturating_sub(3);
        filled += n;
        if let Some(i) = find(&buf[from..filled], b"\r\n\r\n") {
            break from + i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).map_err(|_| "header not text")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("status line")?;
    let (mut length, mut keep_alive) = (None, true);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked");
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            keep_alive = false;
        }
    }
    // 304 and friends carry no body.
    let length = if status == 304 || status == 204 {
        0
    } else {
        length.ok_or("no content-length")?
    };
    let mut remaining = length
        .checked_sub(filled - header_end)
        .ok_or("more bytes than the body")?;
    while remaining > 0 {
        let want = remaining.min(buf.len());
        let n = stream
            .read(&mut buf[..want])
            .await
            .map_err(|_| "read body")?;
        if n == 0 {
            return Err("closed in body");
        }
        remaining -= n;
    }
    Ok((status, length, keep_alive))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request's answer in full, for checking what two servers send: status, headers
/// (lower-case names, in order) and body.
pub async fn fetch(
    addr: SocketAddr,
    request: &[u8],
) -> std::io::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = vec![0u8; 8 * 1024 * 1024];
    let bad = |what: &str| std::io::Error::other(what.to_owned());
    stream.write_all(request).await?;
    let mut filled = 0;
    let header_end = loop {
        let n = stream.read(&mut buf[filled..MAX_HEADER]).await?;
        if n == 0 {
            return Err(bad("closed before the headers ended"));
        }
        filled += n;
        if let Some(i) = find(&buf[..filled], b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| bad("no content-length"))?;
    if length + header_end > buf.len() {
        return Err(bad("body larger than 8 MiB"));
    }
    while filled < header_end + length {
        let n = stream.read(&mut buf[filled..header_end + length]).await?;
        if n == 0 {
            return Err(bad("closed in the body"));
        }
        filled += n;
    }
    Ok((
        status,
        headers,
        buf[header_end..header_end + length].to_vec(),
    ))
}
