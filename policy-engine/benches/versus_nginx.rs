//! The policy-engine against nginx serving the same bytes, in one run, loopback only and
//! bounded in time.
//!
//! For each body (the conformance graph's `candidate-4.6&arch=amd64`, 73 KiB, and the
//! full-scale graph's `stable-4.18&arch=amd64`, 484 KiB), the policy-engine binary
//! is started against an upstream inside this process; its answer to the request
//! (plain and gzip: body, Content-Type, ETag) is written to a temp dir that nginx
//! (Debian's `nginx`, own prefix and config, a free 127.0.0.1 port, `gzip_static`)
//! serves with the same headers. A third server, a bare actix-web handler that returns
//! the same bytes with no routing, checks or metrics (this binary re-run as a child),
//! shows what the framework alone costs. The same load generator
//! ([`load`], 64 keep-alive connections) then drives each server in turn, plain then
//! gzip, for `PE_BENCH_ROUNDS` rounds (default 2) of `PE_BENCH_SECS` (default 10 s)
//! each, and prints req/s, p50 and p99 for each and the policy-engine/nginx ratio.
//!
//! What keeps the comparison even, as a deployment would run each server: nginx runs
//! `worker_processes auto` (one per CPU), the policy-engine its default of one HTTP
//! worker per CPU, and the bare server actix's same default, so all three answer on as
//! many threads as the machine has cores; all keep connections alive (nginx's request
//! limit per connection is lifted, actix has none); nginx serves the file the way it
//! would serve a static mirror (`sendfile`, `gzip_static`), the policy-engine from its
//! memory; every answer carries the same body, Content-Type, ETag and `Vary` (nginx and
//! the bare server send the policy-engine's, CORS's additions included; all checked
//! before the rounds), and differs only in the framework's own headers (`Server`,
//! `Last-Modified`, `Accept-Ranges` from nginx). The load generator runs in this process
//! on the same cores for all three, one server at a time.
//!
//! The policy-engine runs with the environment the operand image sets (glibc's allocator
//! settings, [`image_env`]; `PE_BENCH_IMAGE_ENV=0` for glibc's default arena count). The bare server
//! keeps glibc's defaults, as the framework's own reference: it hands actix whole
//! bodies, and with the image's fixed thresholds each 484 KiB write buffer would be
//! mapped and unmapped per answer.
//!
//! `PE_BENCH_BINARY` runs another policy-engine binary (an older build, to compare);
//! `PE_BENCH_GRAPH=conformance|full` runs one body. Every server is stopped by PID.

#[path = "support/full_graph.rs"]
mod full_graph;
#[path = "support/image_env.rs"]
mod image_env;
#[path = "support/load.rs"]
mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};

const CONFORMANCE: &[u8] = include_bytes!(
    "../../graph-data/tests/conformance/graph-data-apply/20211124.083150/graph-gb-with-quay-metadata.json"
);
const CONNECTIONS: usize = 64;
const PATH: &str = "/api/upgrades_info/graph";
/// Set in the child that serves as the bare actix-web server: `PORT:DIR`.
const BARE_ENV: &str = "PE_BENCH_BARE_SERVER";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn peak_rss(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A child process stopped by PID when dropped: SIGTERM (nginx's master then stops its
/// workers), then SIGKILL if it is still there after 5 s.
struct Server {
    name: &'static str,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_listening(addr: SocketAddr, server: &mut Server) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{} exited before listening: {status}", server.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not listen on {addr} within 30 s", server.name);
}

/// The bare server: this binary re-run with [`BARE_ENV`]; serves `DIR/body.json` and
/// `DIR/body.json.gz` with the headers written beside them, for any path.
fn bare_server(spec: &str) -> std::io::Result<()> {
    let (port, dir) = spec.split_once(':').expect("PORT:DIR");
    let dir = PathBuf::from(dir);
    let plain = web::Bytes::from(std::fs::read(dir.join("body.json"))?);
    let gzip = web::Bytes::from(std::fs::read(dir.join("body.json.gz"))?);
    let etags = std::fs::read_to_string(dir.join("etags"))?;
    let (etag, etag_gzip) = etags.trim().split_once(' ').expect("two etags");
    let vary = std::fs::read_to_string(dir.join("vary"))?.trim().to_owned();
    let state = web::Data::new((plain, gzip, etag.to_owned(), etag_gzip.to_owned(), vary));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new().app_data(state.clone()).default_service(web::to(
                |req: actix_web::HttpRequest,
                 state: web::Data<(web::Bytes, web::Bytes, String, String, String)>| async move {
                    let gzip = req
                        .headers()
                        .get("accept-encoding")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("gzip"));
                    let mut response = HttpResponse::Ok();
                    response
                        .content_type("application/json")
                        .insert_header(("vary", state.4.as_str()));
                    if gzip {
                        response
                            .insert_header(("etag", state.3.as_str()))
                            .insert_header(("content-encoding", "gzip"))
                            .body(state.1.clone())
                    } else {
                        response
                            .insert_header(("etag", state.2.as_str()))
                            .body(state.0.clone())
                    }
                },
            ))
        })
        .disable_signals()
        .bind(("127.0.0.1", port.parse::<u16>().expect("port")))?
        .run()
        .await
    })
}

fn main() {
    if let Ok(spec) = std::env::var(BARE_ENV) {
        bare_server(&spec).expect("bare server");
        return;
    }
    if Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("nginx is not installed: apt-get install nginx-light (or nginx), then rerun");
        std::process::exit(2);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let env = |name: &str, default: u64, max: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
            .clamp(1, max)
    };
    let duration = Duration::from_secs(env("PE_BENCH_SECS", 10, 120));
    let rounds = env("PE_BENCH_ROUNDS", 2, 10);
    let which = std::env::var("PE_BENCH_GRAPH").unwrap_or_default();
    let binary = std::env::var("PE_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_policy-engine").to_owned());
    println!("policy-engine binary: {binary}; {CONNECTIONS} connections, {rounds} rounds of {duration:?} per server and coding");
    println!(
        "policy-engine environment: {}",
        image_env::describe(&image_env::image_env())
    );
    if which.is_empty() || which == "conformance" {
        println!("\nconformance graph: 1085 releases, 19478 edges");
        compare(
            &binary,
            CONFORMANCE.to_vec(),
            "channel=candidate-4.6&arch=amd64",
            duration,
            rounds,
        )
        .await;
    }
    if which.is_empty() || which == "full" {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/graph-data");
        let (graph, summary) = full_graph::build(&dir);
        println!("\n{summary}");
        compare(
            &binary,
            graph,
            "channel=stable-4.18&arch=amd64",
            duration,
            rounds,
        )
        .await;
    }
}

/// Starts an upstream serving `graph`, a policy-engine fed by it, then nginx and the bare
/// server with the policy-engine's answer to `query`, and runs the rounds.
async fn compare(binary: &str, graph: Vec<u8>, query: &str, duration: Duration, rounds: u64) {
    let graph = web::Data::new(web::Bytes::from(graph));
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("upstream listener");
    let upstream_url = format!("http://{}/graph", upstream.local_addr().expect("address"));
    let server = HttpServer::new(move || {
        App::new().app_data(graph.clone()).default_service(web::to(
            |graph: web::Data<web::Bytes>| async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(graph.get_ref().clone())
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(upstream)
    .expect("upstream server")
    .run();
    let upstream_handle = server.handle();
    tokio::spawn(server);

    let (port, status_port) = (free_port(), free_port());
    let mut pe = Server {
        name: "policy-engine",
        child: Command::new(binary)
            .args(["--service.address", "127.0.0.1"])
            .args(["--service.port", &port.to_string()])
            .args(["--status.address", "127.0.0.1"])
            .args(["--status.port", &status_port.to_string()])
            .args(["--service.path_prefix", "/api/upgrades_info"])
            .args(["--service.mandatory_client_parameters", "channel"])
            .args(["--upstream.cincinnati.url", &upstream_url])
            .envs(image_env::image_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the policy-engine binary"),
    };
    let pe_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(pe_addr, &mut pe).await;
    let path = format!("{PATH}?{query}");
    let (plain_request, gzip_request) = (load::get(&path, false), load::get(&path, true));
    // The first answers wait for the first graph and compute the body.
    let started = Instant::now();
    let (status, plain_headers, plain) = load::fetch(pe_addr, &plain_request)
        .await
        .expect("policy-engine answer");
    assert_eq!(status, 200, "policy-engine status for {query}");
    let (status, gzip_headers, gzip) = load::fetch(pe_addr, &gzip_request)
        .await
        .expect("policy-engine gzip answer");
    assert_eq!(status, 200, "policy-engine gzip status for {query}");
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header from the policy-engine"))
    };
    let (etag, etag_gzip) = (
        header(&plain_headers, "etag"),
        header(&gzip_headers, "etag"),
    );
    assert_eq!(header(&gzip_headers, "content-encoding"), "gzip");
    println!(
        "{query}: {} bytes, gzip {} bytes, first answers in {:.1?}",
        plain.len(),
        gzip.len(),
        started.elapsed()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    // nginx's workers may run as another user (nobody when started as root).
    let public = |p: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    public(dir.path(), 0o755);
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("www dir");
    public(&www, 0o755);
    for (name, bytes) in [("body.json", &plain), ("body.json.gz", &gzip)] {
        std::fs::write(www.join(name), bytes).expect("body file");
        public(&www.join(name), 0o644);
    }
    std::fs::write(www.join("etags"), format!("{etag} {etag_gzip}")).expect("etags file");
    // The policy-engine's Vary (CORS adds its request headers to it), sent by all three.
    let vary = header(&plain_headers, "vary");
    std::fs::write(www.join("vary"), &vary).expect("vary file");

    let nginx_port = free_port();
    let conf = dir.path().join("nginx.conf");
    let prefix = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            r#"worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    open_file_cache max=16;
    map $sent_http_content_encoding $pe_etag {{
        gzip '{etag_gzip}';
        default '{etag}';
    }}
    server {{
        listen 127.0.0.1:{nginx_port};
        root {www};
        location = {PATH} {{
            default_type application/json;
            gzip_static on;
            etag off;
            add_header ETag $pe_etag;
            add_header Vary "{vary}";
            rewrite ^ /body.json break;
        }}
    }}
}}
"#,
            www = www.display(),
        ),
    )
    .expect("nginx.conf");
    let mut nginx = Server {
        name: "nginx",
        child: Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting nginx"),
    };
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], nginx_port).into();
    wait_listening(nginx_addr, &mut nginx).await;

    let bare_port = free_port();
    let mut bare = Server {
        name: "bare actix-web",
        child: Command::new(std::env::current_exe().expect("own path"))
            .env(BARE_ENV, format!("{bare_port}:{}", www.display()))
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the bare server"),
    };
    let bare_addr: SocketAddr = ([127, 0, 0, 1], bare_port).into();
    wait_listening(bare_addr, &mut bare).await;

    // The same bytes and the same entity tags from every server.
    for (name, addr) in [("nginx", nginx_addr), ("bare actix-web", bare_addr)] {
        for (request, body, tag) in [
            (&plain_request, &plain, &etag),
            (&gzip_request, &gzip, &etag_gzip),
        ] {
            let (status, headers, got) = load::fetch(addr, request).await.expect("answer");
            assert_eq!(status, 200, "{name} status");
            assert!(&got == body, "{name} serves other bytes");
            assert_eq!(&header(&headers, "etag"), tag, "{name} ETag");
            assert_eq!(header(&headers, "content-type"), "application/json");
            assert_eq!(header(&headers, "vary"), vary, "{name} Vary");
        }
    }

    let mut ratios: Vec<(&str, f64, f64)> = Vec::new();
    for round in 1..=rounds {
        for (coding, request) in [("plain", &plain_request), ("gzip", &gzip_request)] {
            let requests = Arc::new(vec![request.clone()]);
            let mut rates = Vec::new();
            for (name, addr) in [
                ("policy-engine", pe_addr),
                ("nginx", nginx_addr),
                ("bare actix-web", bare_addr),
            ] {
                let phase = load::run(addr, Arc::clone(&requests), CONNECTIONS, duration).await;
                println!("round {round} {coding:5} {name:14}: {}", phase.summary());
                rates.push((phase.rate(), phase.quantile_ms(0.99)));
            }
            println!(
                "round {round} {coding:5} policy-engine/nginx {:.2}x, policy-engine/bare {:.2}x",
                rates[0].0 / rates[1].0,
                rates[0].0 / rates[2].0
            );
            ratios.push((coding, rates[0].0 / rates[1].0, rates[0].1));
        }
    }
    for coding in ["plain", "gzip"] {
        let of: Vec<String> = ratios
            .iter()
            .filter(|r| r.0 == coding)
            .map(|r| format!("{:.2}x (p99 {:.1} ms)", r.1, r.2))
            .collect();
        println!("{query} {coding}: policy-engine/nginx {}", of.join(", "));
    }
    println!(
        "peak RSS (VmHWM): policy-engine {}, bare actix-web {}",
        peak_rss(pe.child.id()),
        peak_rss(bare.child.id())
    );
    drop((pe, nginx, bare));
    upstream_handle.stop(true).await;
}
