//! `graph-data`: offline tooling for graph-data trees.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("graph-data: not yet implemented")
}
