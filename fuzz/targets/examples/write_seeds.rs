//! Writes the seeds into `fuzz/corpus/<target>/seed-<id>`, where a campaign
//! starts from them.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (name, input) in acd_fuzz_targets::seeds() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        // Named by content, as libFuzzer names its corpus files.
        let id: String = acd_core::merkle::leaf_hash(&input)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(format!("seed-{id}")), input)?;
    }
    Ok(())
}
