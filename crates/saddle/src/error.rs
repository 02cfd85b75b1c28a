//! Typed errors for everything that reads the outside world.
//!
//! Each variant names *where* the problem is (a file, a field, a flag) and
//! *what was expected*, so that the message alone tells a user what to fix.
//! Shape mistakes inside model code are not errors: they are programming
//! mistakes and panic through [`crate::tensor::shape_mismatch`].
//!
//! Uses: nothing else in the crate (a leaf module).

use std::fmt;
use std::path::{Path, PathBuf};

/// The error type of every fallible saddle function.
#[derive(Debug)]
pub enum Error {
    /// The operating system could not read or write `path`.
    Io {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// `path` was read but its contents are not what was expected.
    Format {
        /// The file whose contents are wrong.
        path: PathBuf,
        /// What is wrong and what was expected, in words.
        message: String,
    },
    /// A configuration value (a flag, a config field, a hyperparameter) is out of range.
    Config {
        /// The field or flag, as the user wrote it (`--lr`, `momentum`).
        field: String,
        /// What was given and what is allowed.
        message: String,
    },
    /// A checkpoint lacks a tensor, or holds one of the wrong shape.
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Which tensor and what was expected.
        message: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format { path: path.as_ref().to_path_buf(), message: message.into() }
    }
    /// An [`Error::Config`] for `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { field: field.into(), message: message.into() }
    }
    /// An [`Error::Checkpoint`] for `path`.
    pub fn checkpoint(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.as_ref().to_path_buf(), message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Format { path, message } => write!(f, "{}: {}", path.display(), message),
            Error::Config { field, message } => write!(f, "{field}: {message}"),
            Error::Checkpoint { path, message } => {
                write!(f, "checkpoint {}: {}", path.display(), message)
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Result` with saddle's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_place_and_the_expectation() {
        let e = Error::format("data/x.idx", "magic number 2049 expected, found 7");
        assert_eq!(e.to_string(), "data/x.idx: magic number 2049 expected, found 7");
        let e = Error::config("--lr", "must be > 0, got -1");
        assert_eq!(e.to_string(), "--lr: must be > 0, got -1");
    }
}
