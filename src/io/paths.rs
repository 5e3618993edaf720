//! Which paths a job may write. A job writes its output, or with `--tile
//! I/N` the tile output `OUTPUT.tile-IIII-of-NNNN.ext`, by renaming a
//! finished file over that name (see `atomic`), which destroys whatever
//! the name held before. So that nothing is destroyed by mistake:
//!
//! - an output that is one of the job's inputs (cloud, particle file,
//!   config file), also through links, `..` or another hard link, is
//!   refused, and so is an input named like one of the output's tiles
//!   (for any I/N, so that `check` and every tile refuse alike);
//! - an existing output that is a folder, device, FIFO or socket is
//!   refused: renaming a file over `/dev/null` (as root) would replace the
//!   device node itself, and writing into a FIFO or device straight would
//!   give up the all-or-nothing write. `/dev/null` is therefore refused
//!   too; `mlsproj check` is the run that writes nothing;
//! - a symbolic link at the output path is itself replaced, never
//!   followed, so its target is never written (a link to an input is
//!   refused, being most likely a mistake).
//!
//! Temporary files need no check: they are unnamed, or created under a
//! fresh name that fails rather than replace an existing file.

use std::ffi::OsStr;
use std::fs::{FileType, Metadata};
use std::path::{Path, PathBuf};

/// The output path of tile `index` of `count`: `projected.ply` becomes
/// `projected.tile-0003-of-0016.ply`, beside it.
pub fn tile_path(output: &Path, index: usize, count: usize) -> PathBuf {
    let (stem, extension) = stem_and_extension(output);
    output.with_file_name(format!("{stem}.tile-{index:04}-of-{count:04}{extension}"))
}

/// The file stem of `output` and its extension with the dot (or "").
fn stem_and_extension(output: &Path) -> (String, String) {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = output
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, extension)
}

/// True when `name` is a file name [`tile_path`] gives for `output`, for
/// some tile of some count.
fn is_tile_name(output: &Path, name: &OsStr) -> bool {
    let (stem, extension) = stem_and_extension(output);
    let name = name.to_string_lossy();
    let numbers = name
        .strip_prefix(&format!("{stem}.tile-"))
        .and_then(|rest| rest.strip_suffix(extension.as_str()));
    let number = |s: &str| s.len() >= 4 && s.bytes().all(|b| b.is_ascii_digit());
    numbers
        .and_then(|numbers| numbers.split_once("-of-"))
        .is_some_and(|(index, count)| number(index) && number(count))
}

/// Refuses an output path that the job must not write: an existing
/// folder, device, FIFO or socket, or one of `inputs` (each named by its
/// role, e.g. "cloud") as [`check_not_input`] decides. The message names
/// the output.
pub fn check_output(output: &Path, inputs: &[(&str, &Path)]) -> Result<(), String> {
    replaceable(output)?;
    inputs
        .iter()
        .try_for_each(|(role, input)| check_not_input(output, role, input))
}

/// Refuses `output` when it is the file `input` (the job's `role`, e.g.
/// "config file"): the same directory entry, or the same file by device
/// and inode, through symbolic links or `..` at either end; and refuses
/// an `input` whose name, or that of the file it links to, is one of the
/// output's tile outputs.
pub fn check_not_input(output: &Path, role: &str, input: &Path) -> Result<(), String> {
    if same_file(output, input) {
        return Err(format!(
            "output {} is an input (the {role}{}): refusing to overwrite it",
            output.display(),
            linked(output, input)
        ));
    }
    let folder = canonical_folder(output);
    for name in [entry(input), input.canonicalize().ok()]
        .into_iter()
        .flatten()
    {
        if name.parent() == folder.as_deref()
            && name.file_name().is_some_and(|n| is_tile_name(output, n))
        {
            return Err(format!(
                "the {role} {} has the name of a tile output of {} (`run --tile` would overwrite it)",
                input.display(),
                output.display()
            ));
        }
    }
    Ok(())
}

/// How the output reaches an input, when not by its own name: `, through
/// a link` or "".
fn linked(output: &Path, input: &Path) -> &'static str {
    if entry(output) == entry(input) {
        ""
    } else {
        ", through a link"
    }
}

/// The folder of `path`: its parent, or the current folder for a bare
/// file name.
pub(crate) fn output_folder(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An unnamed temporary file in the folder of `output` (removed by the
/// system when closed): room for work beside the output, on its disk.
pub(crate) fn unnamed_temp_beside(output: &Path) -> crate::error::Result<std::fs::File> {
    let folder = output_folder(output);
    tempfile::tempfile_in(folder).map_err(|e| crate::Error::io(folder, e))
}

/// The canonical folder of `path` (its parent, or the current folder).
fn canonical_folder(path: &Path) -> Option<PathBuf> {
    output_folder(path).canonicalize().ok()
}

/// The directory entry `path` names, with its folder canonical: the name
/// a rename to `path` replaces (a link there is not followed).
fn entry(path: &Path) -> Option<PathBuf> {
    Some(canonical_folder(path)?.join(path.file_name()?))
}

/// True when `a` and `b` are one file: the same entry, or (on Unix) the
/// same device and inode, looking at each path both as it is (a link
/// itself) and through its links.
fn same_file(a: &Path, b: &Path) -> bool {
    if entry(a).is_some() && entry(a) == entry(b) {
        return true;
    }
    let ids = |path: &Path| -> Vec<(u64, u64)> {
        [path.symlink_metadata(), path.metadata()]
            .into_iter()
            .flatten()
            .filter_map(|metadata| file_id(&metadata))
            .collect()
    };
    let b = ids(b);
    ids(a).iter().any(|id| b.contains(id))
}

/// The device and inode of a file.
#[cfg(unix)]
fn file_id(metadata: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

/// No portable file identity off Unix: entries are compared by name.
#[cfg(not(unix))]
fn file_id(_: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Refuses an existing `output` that a rename must not replace (a folder,
/// device, FIFO or socket). Returns the permissions of an existing regular
/// file, which its replacement keeps; `None` when there is none (a link is
/// replaced by a new file, with the permissions of a new file).
pub(crate) fn replaceable(output: &Path) -> Result<Option<std::fs::Permissions>, String> {
    let Ok(metadata) = output.symlink_metadata() else {
        return Ok(None);
    };
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(Some(metadata.permissions()));
    }
    if kind.is_symlink() {
        return Ok(None);
    }
    Err(format!(
        "output {} is {}: refusing to replace it (an output must be a regular file or a new name)",
        output.display(),
        describe(kind)
    ))
}

/// What a file that is neither a regular file nor a link is, in words.
#[cfg(unix)]
fn describe(kind: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// What a file that is neither a regular file nor a link is, in words.
#[cfg(not(unix))]
fn describe(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_names_are_recognised_for_any_count() {
        let output = Path::new("out/projected.ply");
        assert_eq!(
            tile_path(output, 3, 16),
            Path::new("out/projected.tile-0003-of-0016.ply")
        );
        for name in [
            "projected.tile-0003-of-0016.ply",
            "projected.tile-12345-of-20000.ply",
        ] {
            assert!(is_tile_name(output, OsStr::new(name)), "{name}");
        }
        for name in [
            "projected.ply",
            "projected.tile-3-of-16.ply",
            "projected.tile-0003-of-0016.xyz",
            "other.tile-0003-of-0016.ply",
            "projected.tile-000a-of-0016.ply",
        ] {
            assert!(!is_tile_name(output, OsStr::new(name)), "{name}");
        }
    }
}
