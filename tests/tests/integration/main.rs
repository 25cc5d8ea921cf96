//! End-to-end tests against a real CNCF distribution registry on 127.0.0.1, one registry
//! per test (the binary comes from Debian's `docker-registry`; `hack/test.sh` installs it).
//! Modules by theme: the harness proving itself with skopeo, registry scrapes of the
//! reference's fixture repositories, credentials, TLS, refreshes, and OCI layout scrapes
//! compared with registry scrapes, release signatures served to the CVO, and the registry
//! client's limits.

mod auth;
mod graph_data_image;
mod harness;
mod limits;
mod oci_layout;
mod refresh;
mod resilience;
mod scrape;
mod signatures;
mod support;
mod tls;
mod two_process;
