//! HTTP-surface tests of the policy-engine: every route, error kind, Accept row, CORS,
//! ETag and gzip, the CVO's response checks, the status server, a real upstream
//! served from the test on 127.0.0.1, and one-process mode on the bundled sample.

mod harness;

mod accept;
mod binary;
mod binary_refresh;
mod caching;
mod cvo;
mod errors;
mod one_process;
mod planner;
mod planner_page;
mod planner_upstream;
mod routes;
mod status;
mod surface;
mod upstream;
