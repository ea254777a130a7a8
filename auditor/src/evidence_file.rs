//! Evidence files: one pretty-printed [`acd_core::evidence::Evidence`] JSON
//! object per finding, named `<origin>-<kind>-<milliseconds>.json` in the
//! party's `evidence/` directory, written to a temporary name, synced and
//! renamed so that a reader never sees half a file. `acd verify FILE` (or
//! [`acd_core::evidence::verify`]) re-checks one offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use acd_core::evidence::Evidence;

/// Writes `evidence` into `dir`; returns the file's path.
pub fn write(dir: &Path, evidence: &Evidence) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name: String = evidence
        .origin
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let text = serde_json::to_string_pretty(evidence).map_err(std::io::Error::other)?;
    // Two findings in one millisecond get distinct names.
    for n in 0u32.. {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!("{name}-{}-{stamp}{suffix}.json", evidence.kind));
        if path.exists() {
            continue;
        }
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        return Ok(path);
    }
    Err(std::io::Error::other("no free evidence file name"))
}

/// Reads the evidence files in `dir`, oldest name first.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<(PathBuf, Evidence)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let ev = serde_json::from_str(&text).map_err(std::io::Error::other)?;
            out.push((path, ev));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
