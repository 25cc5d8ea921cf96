//! Reading the files of a graph-data directory without ever leaving it.
//!
//! Symbolic links are followed only while they resolve inside the root (Kubernetes
//! mounts ConfigMaps and volumes as `version -> ..data/version -> ..2024_…/version`), so
//! a planted `LICENSE -> /var/lib/cincinnati/registry-credentials/config.json` is refused
//! by name instead of being read and served. Only regular files are read (a FIFO would
//! block the reader forever, `/dev/zero` would never end), each opened without following
//! a last-moment link and without blocking, and read up to a size cap. Hard links need no
//! check of their own: the kernel lets a user link only files they own or may read and
//! write (`fs.protected_hardlinks`, on by default), so one cannot plant a file here that
//! they could not have copied here anyway.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Why a file of the tree was not read.
#[derive(Debug, thiserror::Error)]
pub enum RootDirError {
    /// The path resolves (through a symbolic link) outside the root.
    #[error("it resolves to {}, outside the graph-data directory", target.display())]
    Outside {
        /// Where it resolves to.
        target: PathBuf,
    },
    /// Not a regular file or directory: a device, FIFO or socket.
    #[error("it is a {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the cap.
    #[error("{size} bytes is above the {cap} byte limit per file")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// Reading failed.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
}

/// What a child of a directory is, after resolving links inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A graph-data root directory, resolved once.
#[derive(Debug, Clone)]
pub struct RootDir {
    root: PathBuf,
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

impl RootDir {
    /// Resolves `root` (which may itself be a link: it is the operator's choice).
    pub fn open(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Self { root })
    }

    /// The resolved root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves `rel` inside the root; `Ok(None)` when it does not exist.
    fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, RootDirError> {
        let target = match self.root.join(rel).canonicalize() {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling link is refused like any link out of the tree would be if
                // its target appeared later; a plain missing file is just missing.
                return match std::fs::symlink_metadata(self.root.join(rel)) {
                    Ok(_) => Err(RootDirError::Outside {
                        target: std::fs::read_link(self.root.join(rel))
                            .unwrap_or_else(|_| self.root.join(rel)),
                    }),
                    Err(_) => Ok(None),
                };
            }
            Err(e) => return Err(e.into()),
        };
        if !target.starts_with(&self.root) {
            return Err(RootDirError::Outside { target });
        }
        Ok(Some(target))
    }

    /// What `rel` is; `Ok(None)` when it does not exist.
    pub fn kind(&self, rel: &str) -> Result<Option<ChildKind>, RootDirError> {
        let Some(target) = self.resolve(rel)? else {
            return Ok(None);
        };
        kind_of(std::fs::metadata(&target)?.file_type()).map(Some)
    }

    /// Reads the regular file `rel` (at most `cap` bytes); `Ok(None)` when it does not
    /// exist.
    pub fn read_file(&self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>, RootDirError> {
        let Some(target) = self.resolve(rel)? else {
            return Ok(None);
        };
        let t = std::fs::metadata(&target)?.file_type();
        if t.is_dir() {
            return Err(RootDirError::Io(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            )));
        }
        if !t.is_file() {
            return Err(RootDirError::NotRegular(kind_name(t)));
        }
        read_resolved(&target, cap).map(Some)
    }

    /// The children of directory `rel`, at most `max` of them, each with what it is once
    /// links are resolved inside the root; `Ok(None)` when the directory does not exist.
    /// Only children that are links cost a resolution: the directory itself is resolved.
    pub fn list(&self, rel: &str, max: usize) -> Result<Option<Vec<Child>>, RootDirError> {
        let Some(target) = self.resolve(rel)? else {
            return Ok(None);
        };
        let mut children = Vec::new();
        for item in std::fs::read_dir(&target)? {
            let item = item?;
            if children.len() >= max {
                return Err(RootDirError::Io(io::Error::other(format!(
                    "more than {max} entries"
                ))));
            }
            let name = item
                .file_name()
                .into_string()
                .map_err(|raw| raw.to_string_lossy().into_owned());
            let path = item.path();
            let kind = match item.file_type() {
                Ok(t) if t.is_symlink() => self.kind_of_link(&path),
                Ok(t) => kind_of(t),
                Err(e) => Err(e.into()),
            };
            children.push(Child { name, path, kind });
        }
        Ok(Some(children))
    }

    fn kind_of_link(&self, path: &Path) -> Result<ChildKind, RootDirError> {
        let target = path.canonicalize().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                RootDirError::Outside {
                    target: std::fs::read_link(path).unwrap_or_else(|_| path.to_owned()),
                }
            } else {
                e.into()
            }
        })?;
        if !target.starts_with(&self.root) {
            return Err(RootDirError::Outside { target });
        }
        kind_of(std::fs::metadata(&target)?.file_type())
    }
}

fn kind_of(t: std::fs::FileType) -> Result<ChildKind, RootDirError> {
    if t.is_dir() {
        Ok(ChildKind::Dir)
    } else if t.is_file() {
        Ok(ChildKind::File)
    } else {
        Err(RootDirError::NotRegular(kind_name(t)))
    }
}

/// Opens a path already resolved inside the root without following a link swapped in
/// meanwhile and without blocking on a FIFO, checks the open file, reads up to `cap`.
fn read_resolved(path: &Path, cap: u64) -> Result<Vec<u8>, RootDirError> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            // ELOOP: the last component became a link after it was resolved.
            if e.raw_os_error() == Some(libc::ELOOP) {
                RootDirError::Outside {
                    target: std::fs::read_link(path).unwrap_or_else(|_| path.to_owned()),
                }
            } else {
                e.into()
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(RootDirError::NotRegular(kind_name(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(RootDirError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(RootDirError::TooLarge {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// A child of a listed directory.
#[derive(Debug)]
pub struct Child {
    /// Its name, or the lossily decoded name when it is not UTF-8.
    pub name: Result<String, String>,
    /// Its path, to read it with [`Child::read`].
    path: PathBuf,
    /// What it is once links are resolved, or why it is refused.
    pub kind: Result<ChildKind, RootDirError>,
}

impl Child {
    /// Reads it, if it is a regular file (at most `cap` bytes).
    pub fn read(&self, cap: u64) -> Result<Vec<u8>, RootDirError> {
        read_resolved(&self.path, cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_are_followed_links_outside_and_specials_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "token").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..data")).unwrap();
        std::fs::write(d.join("..data/version"), "1.1.0\n").unwrap();
        symlink("..data/version", d.join("version")).unwrap();
        symlink(outside.path().join("secret"), d.join("LICENSE")).unwrap();
        symlink("../../../../../../../etc/passwd", d.join("up")).unwrap();
        symlink("nowhere", d.join("dangling")).unwrap();
        nix_mkfifo(&d.join("fifo"));
        let root = RootDir::open(d).unwrap();
        assert_eq!(root.read_file("version", 100).unwrap().unwrap(), b"1.1.0\n");
        for name in ["LICENSE", "up", "dangling"] {
            assert!(
                matches!(root.read_file(name, 100), Err(RootDirError::Outside { .. })),
                "{name}"
            );
        }
        assert!(matches!(
            root.read_file("fifo", 100),
            Err(RootDirError::NotRegular("FIFO"))
        ));
        assert!(matches!(
            root.read_file("version", 3),
            Err(RootDirError::TooLarge { size: 6, cap: 3 })
        ));
        assert_eq!(root.read_file("missing", 100).unwrap(), None);
        assert_eq!(root.kind("..data").unwrap(), Some(ChildKind::Dir));
    }

    /// Makes a FIFO with coreutils' `mkfifo`.
    pub(crate) fn nix_mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
