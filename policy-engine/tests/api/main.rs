//! HTTP-surface tests of the policy-engine: every route, error kind, Accept row, CORS,
//! ETag and gzip, the CVO's response checks, the status server, and a real upstream
//! served from the test on 127.0.0.1.

mod harness;

mod accept;
mod binary;
mod caching;
mod cvo;
mod errors;
mod routes;
mod status;
mod upstream;
