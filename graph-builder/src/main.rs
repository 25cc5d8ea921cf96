//! `graph-builder`: thin entry point; the work lives in the library.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("graph-builder: the scrape loop and HTTP service are not yet implemented")
}
