//! Writing messages into a Maildir the way a delivery agent does: into
//! `tmp/`, then renamed into `new/`, with the size in the file name so that
//! an IMAP server need not stat the file (`,S=` and `,W=`, which Dovecot
//! reads). Messages keep their CRLF line ends, so the size and the size on the
//! wire (`W=`) are the same.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct Maildir {
    path: PathBuf,
    /// Part of every file name: the time this writer started and our pid.
    stamp: String,
}

impl Maildir {
    /// Creates `path` with its `cur/`, `new/` and `tmp/` folders (parents too).
    pub fn create(path: &Path) -> Result<Maildir> {
        for sub in ["cur", "new", "tmp"] {
            let dir = path.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let secs = chrono::Utc::now().timestamp();
        Ok(Maildir {
            path: path.to_path_buf(),
            stamp: format!("{secs}.P{}", std::process::id()),
        })
    }

    /// Writes message number `n` of this writer; returns its path in `new/`.
    /// No fsync: the files are a benchmark's corpus, rebuilt on every run.
    pub fn deliver(&self, n: u64, message: &[u8]) -> Result<PathBuf> {
        // Zero-padded so that a sort by name is the order of delivery.
        let base = format!("{}Q{n:09}.bench", self.stamp);
        let size = message.len();
        let tmp = self.path.join("tmp").join(&base);
        let new = self
            .path
            .join("new")
            .join(format!("{base},S={size},W={size}"));
        std::fs::write(&tmp, message).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &new)
            .with_context(|| format!("moving {} into new/", tmp.display()))?;
        Ok(new)
    }

    /// The files in `new/` and `cur/`, sorted by name.
    pub fn messages(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.path.join(sub);
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
            {
                let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
                if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    out.push(entry.path());
                }
            }
        }
        out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_into_new() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(&dir.path().join("user1")).unwrap();
        let a = md.deliver(2, b"Subject: a\r\n\r\nx\r\n").unwrap();
        let b = md.deliver(1, b"Subject: b\r\n\r\ny\r\n").unwrap();
        assert!(a.to_str().unwrap().ends_with(",S=17,W=17"));
        assert_eq!(std::fs::read(&a).unwrap(), b"Subject: a\r\n\r\nx\r\n");
        assert_eq!(md.messages().unwrap(), vec![b, a]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("user1/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}
