//! Output files that appear complete or not at all, and leave nothing
//! behind when the run dies.
//!
//! On Linux the output is written into an unnamed file (`O_TMPFILE`) in
//! the target's folder. Until the commit it has no name, so however the
//! process ends (an error, Ctrl-C, the SIGTERM a batch scheduler sends at
//! its time limit, kill -9, a crash) the kernel frees it and the folder
//! holds nothing new. The commit links it to the target's name when that
//! is free; else under a fresh temporary name, renamed over the target: a
//! rename is atomic and replaces, where a link cannot replace, so the
//! linked name lives only for the two system calls between (a kill -9
//! exactly there is the one way to leave it).
//!
//! Where the folder's file system has no `O_TMPFILE` (some network and
//! FUSE file systems), and off Linux, a named `.mlsproj-XXXXXX.tmp` is
//! written instead. Its path is kept in a registry that the handler of
//! [`remove_temps_on_signals`] empties on SIGINT, SIGTERM and SIGHUP before
//! the process dies of the signal; only kill -9 can leave it behind then.
//!
//! A replaced output keeps its permission bits; a new one gets those of a
//! new file (0o666 less the umask). What may be replaced at all is decided
//! by [`super::paths`].

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tempfile::{Builder, TempPath};

use super::paths::replaceable;

/// The environment variable that, when set, makes every output go through
/// a named temporary file even where `O_TMPFILE` works: for a file system
/// that claims `O_TMPFILE` and mishandles it, and to test that path.
pub const NAMED_TEMP_VARIABLE: &str = "MLSPROJ_NAMED_TEMP";

/// Named temporary files not yet renamed into place: what a signal must
/// remove. Held while a temporary name is created, committed or removed,
/// so that the handler never misses one nor races a rename.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry, also after a panic elsewhere (a list of paths cannot be
/// left inconsistent).
fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Names of temporary files: hidden, and recognisable as mlsproj's.
fn temp_names() -> Builder<'static, 'static> {
    let mut builder = Builder::new();
    builder.prefix(".mlsproj-").suffix(".tmp");
    builder
}

/// Installs the handler of SIGINT, SIGTERM and SIGHUP for a program that
/// writes outputs: it removes every named temporary file still pending,
/// then lets the signal end the process as it would without a handler, so
/// that the shell, Slurm or a parent process still sees death by that
/// signal (exit status 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
/// Unnamed temporary files need no handler; the kernel frees them.
///
/// The handler runs on a thread of its own (signal-hook's self-pipe), so
/// that it may take the registry's lock and remove files, which a signal
/// handler proper must not.
#[cfg(unix)]
pub fn remove_temps_on_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Kept locked until the end: no temporary file is created
                // after this sweep.
                let pending = pending();
                for path in pending.iter() {
                    let _ = std::fs::remove_file(path);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        })?;
    Ok(())
}

/// A file being written; it replaces its target on [`AtomicFile::commit`]
/// and vanishes when dropped before that.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    path: PathBuf,
    /// The target's folder, where the temporary file lives so that the
    /// final rename cannot cross file systems.
    folder: PathBuf,
    file: File,
    /// The named temporary file (registered in [`PENDING`]), or `None` for
    /// an unnamed one.
    named: Option<TempPath>,
}

impl AtomicFile {
    /// Starts writing `path`. Refuses a target that is a folder, device,
    /// FIFO or socket, and a missing folder, naming them.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let folder = super::paths::output_folder(path);
        if !folder.is_dir() {
            return Err(Error::io(
                folder,
                io::Error::new(io::ErrorKind::NotFound, "output folder does not exist"),
            ));
        }
        let permissions = replaceable(path).map_err(Error::Invalid)?;
        let (file, named) = match unnamed(folder)? {
            Some(file) => (file, None),
            None => {
                let mut pending = pending();
                let (file, named) = named_temp(folder)
                    .map_err(|e| Error::io(folder, e))?
                    .into_parts();
                pending.push(named.to_path_buf());
                (file, Some(named))
            }
        };
        let atomic = AtomicFile {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
            file,
            named,
        };
        if let Some(permissions) = permissions {
            // Not subject to the umask, unlike the mode a file is created
            // with: the old bits exactly.
            atomic
                .file
                .set_permissions(permissions)
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(atomic)
    }

    /// The final path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the temporary file, for writers that must seek
    /// (LAS goes back to its header when it closes).
    pub(crate) fn handle(&self) -> Result<std::fs::File> {
        self.file.try_clone().map_err(|e| Error::io(&self.path, e))
    }

    /// Appends `bytes`; callers buffer, so this goes straight to the file.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Renames the complete file over its target. No other process ever
    /// sees a partial output. There is deliberately no fsync: it would
    /// make every run wait for the disk (halving the write rate of large
    /// outputs) to guard only against a power cut in the instant after the
    /// run, which a rerun repairs.
    pub(crate) fn commit(mut self) -> Result<()> {
        // A signal arriving now waits for the target to be whole again.
        let mut pending = pending();
        let temp = match self.named.take() {
            Some(named) => {
                pending.retain(|path| path != &*named);
                named
            }
            None => {
                // A new output takes its name at once: no temporary name.
                match link_as(&self.file, &self.path) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    linked => return linked.map_err(|e| Error::io(&self.path, e)),
                }
                link_temp(&self.file, &self.folder).map_err(|e| Error::io(&self.folder, e))?
            }
        };
        // A failed rename drops the temporary name, which removes it.
        temp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))
    }
}

impl Drop for AtomicFile {
    /// Removes a named temporary file that was not committed, and its
    /// entry in the registry.
    fn drop(&mut self) {
        if let Some(named) = self.named.take() {
            let mut pending = pending();
            pending.retain(|path| path != &*named);
            drop(named);
        }
    }
}

/// A named temporary file in `folder`, created with the mode of any new
/// file (0o666 less the umask; tempfile's default is private, 0o600).
fn named_temp(folder: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = temp_names();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder)
}

/// An unnamed file in `folder` (`O_TMPFILE`, mode 0o666 less the umask),
/// or `None` where the file system cannot make one (`EOPNOTSUPP`; `EISDIR`
/// from kernels older than 3.11, which read the flag as `O_DIRECTORY`;
/// `EINVAL`) or [`NAMED_TEMP_VARIABLE`] asks for a named file.
#[cfg(target_os = "linux")]
fn unnamed(folder: &Path) -> Result<Option<File>> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    use rustix::io::Errno;
    if std::env::var_os(NAMED_TEMP_VARIABLE).is_some() {
        return Ok(None);
    }
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    match openat(CWD, folder, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
        Err(errno) => Err(Error::io(folder, errno.into())),
    }
}

/// No unnamed files off Linux.
#[cfg(not(target_os = "linux"))]
fn unnamed(_: &Path) -> Result<Option<File>> {
    Ok(None)
}

/// Gives the unnamed `file` the name `path`, failing (`AlreadyExists`)
/// if it is taken: a link never replaces. Through `/proc/self/fd`, as
/// open(2) advises (no privilege needed); by `AT_EMPTY_PATH` where `/proc`
/// is not mounted.
#[cfg(target_os = "linux")]
fn link_as(file: &File, path: &Path) -> io::Result<()> {
    use rustix::fs::{AtFlags, CWD, linkat};
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(CWD, &proc_path, CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Err(Errno::NOENT) => linkat(file, "", CWD, path, AtFlags::EMPTY_PATH),
        linked => linked,
    }
    .map_err(io::Error::from)
}

/// Off Linux every temporary file is named, so there is none to link.
#[cfg(not(target_os = "linux"))]
fn link_as(_: &File, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "unnamed temporary files exist only on Linux",
    ))
}

/// Gives the unnamed `file` a fresh temporary name in `folder`, for the
/// rename over an existing target.
fn link_temp(file: &File, folder: &Path) -> io::Result<TempPath> {
    let linked = temp_names().make_in(folder, |name| link_as(file, name))?;
    Ok(linked.into_temp_path())
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

    /// Holds with the environment as the tests run it: no
    /// [`NAMED_TEMP_VARIABLE`], a temporary folder with `O_TMPFILE`
    /// (ext4, xfs, btrfs, tmpfs).
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_file_shows_nowhere_until_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        assert!(file.named.is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_permission_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o604);
    }

    #[test]
    fn a_folder_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let err = AtomicFile::create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        assert!(dir.path().is_dir());
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
