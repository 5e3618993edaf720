//! Output files that appear complete or not at all: written into a temporary
//! file beside the target and renamed over it only when finished, so that a
//! crash or an error never leaves a truncated result that looks valid.

use crate::error::{Error, Result};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// A file being written; it replaces its target on [`AtomicFile::commit`]
/// and is deleted when dropped before that.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    path: PathBuf,
    temp: NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path`. The temporary file lives in the same folder so
    /// that the final rename cannot cross file systems.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(Error::io(
                folder,
                io::Error::new(io::ErrorKind::NotFound, "output folder does not exist"),
            ));
        }
        let mut builder = tempfile::Builder::new();
        builder.prefix(".mlsproj-").suffix(".tmp");
        // Temporary files are private (0o600) by default; the result should
        // get the usual permissions of a new file (0o666 minus the umask).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder
            .tempfile_in(folder)
            .map_err(|e| Error::io(folder, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    /// The final path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the temporary file, for writers that must seek
    /// (LAS goes back to its header when it closes).
    pub(crate) fn handle(&self) -> Result<std::fs::File> {
        self.temp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Appends `bytes`; callers buffer, so this goes straight to the file.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.temp
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Renames the complete file over its target. No other process ever
    /// sees a partial output. There is deliberately no fsync: it would
    /// make every run wait for the disk (halving the write rate of large
    /// outputs) to guard only against a power cut in the instant after the
    /// run, which a rerun repairs.
    pub(crate) fn commit(self) -> Result<()> {
        let AtomicFile { path, temp } = self;
        temp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_the_target_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();

        let mut abandoned = AtomicFile::create(&path).unwrap();
        abandoned.write_all(b"partial").unwrap();
        drop(abandoned);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("absent");
        let err = AtomicFile::create(&folder.join("out.ply")).unwrap_err();
        assert!(
            err.to_string().contains(&*folder.to_string_lossy()),
            "{err}"
        );
    }
}
