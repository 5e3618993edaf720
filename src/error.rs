//! Typed errors of the library. Every variant names the file (and, where it
//! applies, the line or element) so that a user can find what was wrong.

use std::path::PathBuf;

/// Where in a file a read failed: a text line or a PLY element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The whole file (e.g. it is empty or truncated as a whole).
    File,
    /// A 1-based line of a text file or of a PLY header / ascii body.
    Line(usize),
    /// A 0-based element of a PLY body, e.g. `vertex 1234`.
    Element {
        /// The element's name.
        element: String,
        /// Its 0-based index.
        index: usize,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(line) => write!(f, ": line {line}"),
            Location::Element { element, index } => write!(f, ": {element} {index}"),
        }
    }
}

/// Everything that can go wrong in mlsproj's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused to open, read, write or rename a file.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Shown in the message, so deliberately not named `source`
        /// (thiserror would chain it and it would print twice).
        reason: std::io::Error,
    },
    /// A point file is malformed (bad header, truncated body, bad number, …).
    #[error("{}{location}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Where in it.
        location: Location,
        /// What is wrong there.
        message: String,
    },
    /// The configuration is malformed or inconsistent.
    #[error("{}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A request that cannot be carried out, independent of any one file
    /// (e.g. a batched system whose offsets do not match its arrays).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, reason: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            reason,
        }
    }

    /// A format error at `location` of `path`.
    pub fn format(
        path: impl Into<PathBuf>,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            location,
            message: message.into(),
        }
    }
}
