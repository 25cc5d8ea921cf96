//! The metadata-helper-compatible mode: only the signature store, on the reference
//! metadata-helper's ports (public 8082, status 9082) and flags (`--service.address`,
//! `--service.port`, `--service.path_prefix`, `--status.address`, `--status.port`,
//! `--signatures.dir`), so a deployment laid out for the reference's helper can run it
//! unchanged. The listener and logging flags are the services' shared groups
//! ([`ListenArgs`], [`LogArgs`]), so they spell and read them (`MH_` environment names)
//! the same way. No graph is held, so nothing is reported about unsigned releases.
//!
//! The status port answers `/livez` at once, `/readyz` once the first load has ended,
//! `/metrics` (prefix `cincinnati_mh_`) and `/signatures`.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use graph_builder::config::common::{prefix_env, ListenArgs};
use graph_builder::logging::LogArgs;
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
    about = "Serve release signatures (the atomic signature-store layout) as the reference metadata-helper does",
    // The shared groups' stems read `MH_<STEM>`; the signature flags keep the
    // policy-engine's names.
    mut_args(|a| match a.get_env().and_then(|e| e.to_str()) {
        Some(name) if name.starts_with("PE_") => a,
        _ => prefix_env(a, "MH_"),
    }),
    mut_arg("service_port", |a| a.default_value("8082")),
    mut_arg("status_port", |a| a.default_value("9082")),
    mut_arg("path_prefix", |a| a.default_value(DEFAULT_PREFIX)),
    // The helper serves no graph: the graph request check and `--upstream.method` are
    // accepted (a command line written for the services still starts it), hidden and
    // ignored.
    mut_arg("mandatory_client_parameters", |a| a.hide(true)),
    mut_arg("upstream_method", |a| a.hide(true))
)]
pub struct HelperCli {
    /// `-v` and `--log-format`, shared with the services.
    #[command(flatten)]
    pub log: LogArgs,
    /// The signature and status listeners, with the services' flags (ports 8082 and
    /// 9082 here, prefix `/api/upgrades_info`).
    #[command(flatten)]
    pub listen: ListenArgs,
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
        let listen = &self.listen;
        Ok(HelperSettings {
            service: SocketAddr::new(listen.service_address, listen.service_port),
            status: SocketAddr::new(listen.status_address, listen.status_port),
            path_prefix: normalize_prefix(listen.path_prefix.as_deref().unwrap_or_default()),
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
