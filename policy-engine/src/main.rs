//! `policy-engine`: thin entry point; the work lives in the library.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "policy-engine: not yet implemented; the Cincinnati API lands with the policy-engine issue"
    )
}
