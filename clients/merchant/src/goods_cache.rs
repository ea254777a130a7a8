//! The goods files of the catalog, held in memory with their SHA-256 (the
//! contract's plaintext hash, P1), so that an offer costs one AES-GCM pass
//! over the goods and not a read of the file. A file is read again when its
//! size, modification time or inode changes (an operator replacing the
//! goods, in place or by a rename).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use acd_core::goods;

/// One goods file as read.
pub struct Goods {
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub hash: [u8; 32],
    stamp: Stamp,
}

impl Goods {
    /// Goods not read from a file.
    pub fn from_bytes(bytes: Vec<u8>) -> Goods {
        Goods {
            hash: goods::hash(&bytes),
            stamp: Stamp {
                len: bytes.len() as u64,
                modified: None,
                inode: (0, 0),
            },
            bytes,
        }
    }
}

/// What tells a changed file from the one read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: (meta.dev(), meta.ino()),
        }
    }
}

#[derive(Default)]
pub struct GoodsCache {
    /// Held while a file is read, so that a burst of offers on a cold or
    /// changed file reads it once.
    files: Mutex<HashMap<PathBuf, Arc<Goods>>>,
    reads: AtomicU64,
}

impl GoodsCache {
    /// The goods in `path`, read only if they are not cached or the file
    /// changed. Blocking (one `stat`, and a read on a change).
    pub fn get(&self, path: &Path) -> std::io::Result<Arc<Goods>> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = Stamp::of(&std::fs::metadata(path)?);
        if let Some(g) = files.get(path).filter(|g| g.stamp == stamp) {
            return Ok(g.clone());
        }
        let mut file = std::fs::File::open(path)?;
        // The stamp of the file as opened: a replacement between the stat
        // and the open is read now and seen as changed by the next offer.
        let stamp = Stamp::of(&file.metadata()?);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let g = Arc::new(Goods {
            hash: goods::hash(&bytes),
            bytes,
            stamp,
        });
        files.insert(path.to_owned(), g.clone());
        Ok(g)
    }

    /// How many times a goods file was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A file is read once however often it is asked for, again after it is rewritten (other size) or replaced by a rename, and a missing file is an error.
    #[test]
    fn reads_once_and_again_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("goods");
        std::fs::write(&path, b"first").unwrap();
        let cache = GoodsCache::default();
        for _ in 0..100 {
            let g = cache.get(&path).unwrap();
            assert_eq!(
                (g.bytes.as_slice(), g.hash),
                (&b"first"[..], goods::hash(b"first"))
            );
        }
        assert_eq!(cache.reads(), 1);
        std::fs::write(&path, b"second!").unwrap();
        assert_eq!(cache.get(&path).unwrap().bytes, b"second!");
        assert_eq!(cache.reads(), 2);
        let other = dir.path().join("new");
        std::fs::write(&other, b"third!!").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(cache.get(&path).unwrap().bytes, b"third!!");
        assert_eq!(cache.get(&path).unwrap().bytes, b"third!!");
        assert_eq!(cache.reads(), 3);
        assert!(cache.get(&dir.path().join("missing")).is_err());
    }
}
