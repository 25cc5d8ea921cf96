//! The metadata-helper-compatible mode: only the signature store, on the reference
//! metadata-helper's ports (public 8082, status 9082) and flags (`--service.address`,
//! `--service.port`, `--service.path_prefix`, `--status.address`, `--status.port`,
//! `--signatures.dir`), so a deployment laid out for the reference's helper can run it
//! unchanged. No graph is held, so nothing is reported about unsigned releases.
//!
//! The status port answers `/livez` at once, `/readyz` once the first load has ended,
//! `/metrics` (prefix `cincinnati_mh_`) and `/signatures`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::{ArgAction, Parser};
use prometheus::{Registry, TextEncoder};

use super::serve::{configure_status, SignatureApi};
use super::{SignatureArgs, SignatureConfigError, SignatureSettings};
use crate::config::normalize_prefix;
use crate::routes;
use crate::source::GraphSource;

/// The path prefix the operator gives the update service's routes; the helper's routes
/// sit under it (`/api/upgrades_info/signatures/…`), next to the graph.
pub const DEFAULT_PREFIX: &str = "/api/upgrades_info";

/// Command line of `metadata-helper`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "metadata-helper",
    version,
    about = "Serve release signatures (the atomic signature-store layout) as the reference metadata-helper does"
)]
pub struct HelperCli {
    /// Verbosity: -v info, -vv debug, -vvv trace (default warn); RUST_LOG overrides.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbosity: u8,
    /// Address of the signature server.
    #[arg(
        long = "service.address",
        env = "MH_SERVICE_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub service_address: IpAddr,
    /// Port of the signature server.
    #[arg(long = "service.port", env = "MH_SERVICE_PORT", default_value_t = 8082)]
    pub service_port: u16,
    /// Path prefix of the route (`{prefix}/signatures/<algo>=<digest>/signature-<n>`).
    #[arg(long = "service.path_prefix", env = "MH_SERVICE_PATH_PREFIX", default_value = DEFAULT_PREFIX)]
    pub path_prefix: String,
    /// Address of the status server.
    #[arg(
        long = "status.address",
        env = "MH_STATUS_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub status_address: IpAddr,
    /// Port of the status server.
    #[arg(long = "status.port", env = "MH_STATUS_PORT", default_value_t = 9082)]
    pub status_port: u16,
    /// Sources and keys, as for the policy-engine.
    #[command(flatten)]
    pub signatures: SignatureArgs,
}

/// Validated settings of the helper.
#[derive(Debug, Clone)]
pub struct HelperSettings {
    /// The signature server's socket.
    pub service: SocketAddr,
    /// The status server's socket.
    pub status: SocketAddr,
    /// Normalised path prefix.
    pub path_prefix: String,
    /// Sources and keys.
    pub signatures: SignatureSettings,
}

impl HelperCli {
    /// Checks the command line.
    pub fn settings(&self) -> Result<HelperSettings, SignatureConfigError> {
        Ok(HelperSettings {
            service: SocketAddr::new(self.service_address, self.service_port),
            status: SocketAddr::new(self.status_address, self.status_port),
            path_prefix: normalize_prefix(&self.path_prefix),
            signatures: self.signatures.settings(None, None)?,
        })
    }
}

/// Serves signatures on `service` and status on `status` until `shutdown` completes.
pub async fn run(
    settings: HelperSettings,
    service: TcpListener,
    status: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let registry = Registry::new_custom(Some("cincinnati_mh".to_owned()), None)
        .map_err(std::io::Error::other)?;
    // No graph in this mode: the source stays empty.
    let (api, task) = super::start(&settings.signatures, &GraphSource::new(), &registry)
        .map_err(std::io::Error::other)?;
    let (public, status) = build(&settings, api, registry, service, status)?;
    let (public_handle, status_handle) = (public.handle(), status.handle());
    let mut public = tokio::spawn(public);
    let mut status = tokio::spawn(status);
    let outcome = tokio::select! {
        ended = &mut public => Some(ended),
        ended = &mut status => Some(ended),
        () = shutdown => None,
    };
    if let Some(task) = task {
        task.abort();
    }
    public_handle.stop(true).await;
    status_handle.stop(true).await;
    match outcome {
        None => Ok(()),
        Some(Ok(result)) => result.and(Err(std::io::Error::other("a server stopped"))),
        Some(Err(join)) => Err(std::io::Error::other(join)),
    }
}

fn build(
    settings: &HelperSettings,
    api: SignatureApi,
    registry: Registry,
    service: TcpListener,
    status: TcpListener,
) -> std::io::Result<(actix_web::dev::Server, actix_web::dev::Server)> {
    let api = web::Data::new(api);
    let prefix = settings.path_prefix.clone();
    let public_api = api.clone();
    let public = HttpServer::new(move || {
        let prefix = prefix.clone();
        App::new()
            .app_data(public_api.clone())
            .wrap(routes::cors())
            .configure(move |cfg| super::configure(cfg, &prefix))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .disable_signals()
    .listen(service)?
    .run();
    let registry = web::Data::new(registry);
    let status = HttpServer::new(move || {
        App::new()
            .app_data(api.clone())
            .app_data(registry.clone())
            .configure(configure_status)
            .route("/livez", web::get().to(HttpResponse::Ok))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(status)?
    .run();
    Ok((public, status))
}

async fn readyz(api: web::Data<SignatureApi>) -> HttpResponse {
    if api.state.current().refreshes > 0 {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("signatures not loaded yet")
    }
}

async fn metrics(registry: web::Data<Registry>) -> HttpResponse {
    let mut out = String::new();
    match TextEncoder::new().encode_utf8(&registry.gather(), &mut out) {
        Ok(()) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(out),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
