//! Which job a tile output belongs to, so that `merge` joins only tiles of
//! the job its config describes: when a config or an input changes and only
//! some tiles are rerun, the stale ones are refused by name instead of being
//! merged into a plausible-looking result.
//!
//! A tile records its [`Provenance`] as one line of text (a PLY header
//! comment; any format with comments or metadata records can carry it):
//!
//! ```text
//! mlsproj tile 3/16 version 0.1.0 job 9f3c… cloud 1048576:5e2a… particles 65536:c0d1… count 3000 command run
//! ```
//!
//! `job` is a fingerprint of the settings that shape a particle's values,
//! `cloud` and `particles` the identity of the input files (size and a
//! hash of samples of their bytes, [`FileIdentity`]), `count` the particles
//! of the whole job (of the tile itself for a `Seed` job, which learns its
//! count only as its tiles make the seeds), `command` the command that
//! wrote the tile ([`TileCommand`]).

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::config::{Config, Encoding, Particles};
use crate::error::{Error, Location, Result};
use crate::io::PointReader;

use super::particle_path;
use super::tiles::Tile;

/// FNV-1a, 64 bits: a hash that is the same on every machine and in every
/// build (std's `DefaultHasher` promises neither), for fingerprints that
/// guard against mistakes, not against forgery.
#[derive(Debug, Clone, Copy)]
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Bytes hashed from the start of a file: the whole header of any PLY or
/// text cloud mlsproj writes (point counts and property lists included)
/// and its first points.
const HEAD_BYTES: u64 = 1 << 16;
/// Blocks hashed across the rest of the file, evenly spaced, the last one
/// ending at the end of the file.
const SAMPLED_BLOCKS: u64 = 64;
/// Bytes of each sampled block.
const BLOCK_BYTES: u64 = 1 << 12;

/// What identifies an input file across the runs of one job: its size and
/// a hash of its first 64 KiB and of 64 blocks of 4 KiB spread evenly over
/// the rest (the whole file when it is smaller than that).
///
/// It costs 320 KiB of reads whatever the file's size, and it depends on
/// the content only: a copy of the file to another folder or machine, or a
/// rerun of the step that wrote it with the same result, keeps it, so tiles
/// run on a cluster's shared folder merge anywhere (a modification time
/// would not survive a copy, and would refuse an identical file written
/// again). A regenerated cloud (new noise, a resampling, another scan)
/// changes its header, its first points or its sampled blocks; what it
/// misses is an edit confined to the unsampled bytes of a file that keeps
/// its size, which no cheap check finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    /// The file's size in bytes.
    pub bytes: u64,
    /// FNV-1a of the sampled bytes.
    pub sample: u64,
}

impl FileIdentity {
    /// The identity of the file at `path`; one that is not a regular file
    /// (a device, a FIFO) is refused: tiles read their inputs more than
    /// once, which only a file allows.
    pub fn of(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|error| Error::io(path, error))?;
        if !metadata.is_file() {
            return Err(Error::format(
                path,
                Location::File,
                "not a regular file: a job in tiles reads its inputs more than once",
            ));
        }
        let bytes = metadata.len();
        let mut file = File::open(path).map_err(|error| Error::io(path, error))?;
        let mut hash = Fnv64::new();
        let mut buffer = Vec::new();
        let mut hash_at = |file: &mut File, offset: u64, length: u64| -> std::io::Result<()> {
            file.seek(SeekFrom::Start(offset))?;
            buffer.clear();
            file.by_ref().take(length).read_to_end(&mut buffer)?;
            hash.write(&buffer);
            Ok(())
        };
        let sampled = HEAD_BYTES + SAMPLED_BLOCKS * BLOCK_BYTES;
        let read = if bytes <= sampled {
            hash_at(&mut file, 0, bytes)
        } else {
            hash_at(&mut file, 0, HEAD_BYTES).and_then(|()| {
                let span = bytes - HEAD_BYTES - BLOCK_BYTES;
                (0..SAMPLED_BLOCKS).try_for_each(|block| {
                    let offset = HEAD_BYTES + span * block / (SAMPLED_BLOCKS - 1);
                    hash_at(&mut file, offset, BLOCK_BYTES)
                })
            })
        };
        read.map_err(|error| Error::io(path, error))?;
        Ok(FileIdentity {
            bytes,
            sample: hash.0,
        })
    }
}

/// `BYTES:HASH`, the hash in hexadecimal.
impl fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:016x}", self.bytes, self.sample)
    }
}

impl std::str::FromStr for FileIdentity {
    type Err = ();

    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        let (bytes, sample) = text.split_once(':').ok_or(())?;
        Ok(FileIdentity {
            bytes: bytes.parse().map_err(|_| ())?,
            sample: u64::from_str_radix(sample, 16).map_err(|_| ())?,
        })
    }
}

/// The command whose tiles a job runs: one config describes a `run` job
/// (its particles projected) and a `normals` job (its cloud's points with
/// normals), whose tiles must not be merged together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileCommand {
    /// `mlsproj run --tile`: the particles, projected.
    Run,
    /// `mlsproj normals --tile`: the cloud's points with oriented normals.
    Normals,
}

impl TileCommand {
    /// The command's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TileCommand::Run => "run",
            TileCommand::Normals => "normals",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [TileCommand::Run, TileCommand::Normals]
            .into_iter()
            .find(|command| command.name() == name)
    }

    /// What the job writes one of per point of its counted file.
    pub fn counted(self) -> &'static str {
        match self {
            TileCommand::Run => "particles",
            TileCommand::Normals => "points",
        }
    }

    /// Whether each tile records its own count, not the job's: the `run`
    /// of a `Seed` job, which learns its count only as its tiles make the
    /// seeds (a `normals` job counts the cloud's points whatever the
    /// particles).
    pub fn counts_per_tile(self, config: &Config) -> bool {
        self == TileCommand::Run && matches!(config.particles, Particles::Seed { .. })
    }

    /// The file whose points the job writes, one per point: the particle
    /// file for `run`, the cloud for `normals`.
    pub fn counted_file(self, config: &Config) -> &Path {
        match self {
            TileCommand::Run => particle_path(config),
            TileCommand::Normals => &config.cloud,
        }
    }
}

/// The job a config describes, as its tiles record it: everything that
/// decides the values a tile writes, and the size of the whole job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    /// The mlsproj version that ran it: another version may compute other
    /// values from the same settings.
    pub version: String,
    /// Fingerprint of the settings that shape a particle's values
    /// ([`settings_fingerprint`]).
    pub settings: u64,
    /// The cloud file.
    pub cloud: FileIdentity,
    /// The particle file (the cloud's again for `particles: Cloud` and
    /// `Seed`, whose seeds are made from the cloud).
    pub particles: FileIdentity,
    /// Points the whole job writes: the point count of the particle file
    /// (`run`) or of the cloud (`normals`). A `Seed` job's `run` learns
    /// its count only as its tiles make the seeds, so each of its tiles
    /// records its own count here (which `merge` checks against the rows
    /// the tile holds), and the job a config describes has 0.
    pub count: u64,
    /// The command that runs the job's tiles.
    pub command: TileCommand,
}

impl JobIdentity {
    /// The identity of the `run` job `config` describes as it stands now:
    /// its settings and its input files as they are on disk.
    pub fn of(config: &Config) -> Result<Self> {
        Self::of_command(config, TileCommand::Run)
    }

    /// [`JobIdentity::of`] for the job of `command`.
    pub fn of_command(config: &Config, command: TileCommand) -> Result<Self> {
        let count = if command.counts_per_tile(config) {
            0
        } else {
            PointReader::open(command.counted_file(config))?.len()
        };
        Self::with_count(config, command, count)
    }

    /// [`JobIdentity::of_command`] for a job whose counted file
    /// ([`TileCommand::counted_file`]) is already known to hold `count`
    /// points (a tile run has counted them), or a tile of a `Seed` job's
    /// `run` that made `count` seeds.
    pub(super) fn with_count(config: &Config, command: TileCommand, count: usize) -> Result<Self> {
        let cloud = FileIdentity::of(&config.cloud)?;
        let particles = match (&config.particles, command) {
            (Particles::File(path), TileCommand::Run) => FileIdentity::of(path)?,
            // Seeds are made from the cloud; `normals` writes the cloud's
            // points whatever the particles.
            (Particles::Cloud | Particles::Seed { .. }, _) | (_, TileCommand::Normals) => cloud,
        };
        Ok(JobIdentity {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            settings: settings_fingerprint(config),
            cloud,
            particles,
            count: count as u64,
            command,
        })
    }
}

/// A fingerprint of the settings of `config` that shape a particle's
/// values: every field but the paths (the inputs are identified by content,
/// [`FileIdentity`], so a job folder can move; the output's name only places
/// the tiles, and merge finds them by it), `encoding` (ascii keeps every
/// value exactly, as binary does) and `threads` (results do not depend on
/// the thread count). It hashes the config's `Debug` text, so a field added
/// to [`Config`] enters the fingerprint without anyone remembering to add
/// it here; floats print in their shortest exact form.
pub fn settings_fingerprint(config: &Config) -> u64 {
    let shaping = Config {
        cloud: PathBuf::new(),
        particles: match &config.particles {
            Particles::File(_) => Particles::File(PathBuf::new()),
            other => other.clone(),
        },
        output: PathBuf::new(),
        encoding: Encoding::default(),
        threads: 0,
        ..config.clone()
    };
    let mut hash = Fnv64::new();
    hash.write(format!("{shaping:?}").as_bytes());
    hash.0
}

/// What a tile output records of its origin: which tile of which job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The tile, `I/N`.
    pub tile: Tile,
    /// The job it is a tile of.
    pub job: JobIdentity,
}

/// The first word of a provenance line.
const MARK: &str = "mlsproj tile ";

impl Provenance {
    /// One line of text, for a PLY header comment or another format's
    /// metadata record (no line break).
    pub fn to_comment(&self) -> String {
        let Provenance { tile, job } = self;
        format!(
            "{MARK}{}/{} version {} job {:016x} cloud {} particles {} count {} command {}",
            tile.index,
            tile.count,
            job.version,
            job.settings,
            job.cloud,
            job.particles,
            job.count,
            job.command.name()
        )
    }

    /// Reads a line written by [`Provenance::to_comment`]; `None` for any
    /// other line. A line without `command` (tiles written before `normals`
    /// had tiles) is a `run` tile's.
    pub fn parse(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix(MARK)?;
        let mut words = rest.split_ascii_whitespace();
        let tile: Tile = words.next()?.parse().ok()?;
        let mut value = |key: &str| match (words.next(), words.next()) {
            (Some(found), Some(value)) if found == key => Some(value),
            _ => None,
        };
        let version = value("version")?.to_owned();
        let settings = u64::from_str_radix(value("job")?, 16).ok()?;
        let cloud = value("cloud")?.parse().ok()?;
        let particles = value("particles")?.parse().ok()?;
        let count = value("count")?.parse().ok()?;
        let command = match value("command") {
            Some(name) => TileCommand::parse(name)?,
            None => TileCommand::Run,
        };
        Some(Provenance {
            tile,
            job: JobIdentity {
                version,
                settings,
                cloud,
                particles,
                count,
                command,
            },
        })
    }

    /// The provenance among a file's comments, if any.
    pub fn find(comments: &[String]) -> Option<Self> {
        comments.iter().find_map(|comment| Self::parse(comment))
    }

    /// What differs between this tile's job and `expected`, the job of the
    /// config that merges it (in words naming the inputs of `config`), or
    /// `None` when it is a tile of that job.
    pub fn differences(&self, expected: &JobIdentity, config: &Config) -> Option<String> {
        let found = &self.job;
        if found.command != expected.command {
            // Nothing else compares: the two jobs count other points.
            return Some(format!(
                "written by `mlsproj {} --tile`, and the first tile by `mlsproj {} --tile`: \
                 the tiles of both commands cannot be merged together",
                found.command.name(),
                expected.command.name()
            ));
        }
        let mut differences = Vec::new();
        if found.version != expected.version {
            differences.push(format!(
                "written by mlsproj {}, this is {}",
                found.version, expected.version
            ));
        }
        if found.settings != expected.settings {
            differences.push(format!(
                "its settings differ from the config's (job {:016x}, the config gives {:016x})",
                found.settings, expected.settings
            ));
        }
        let file = |what: &str, path: &Path, was: FileIdentity, is: FileIdentity| {
            (was != is).then(|| {
                format!(
                    "its {what} {} ({was} when the tile ran, {is} now)",
                    path.display()
                )
            })
        };
        differences.extend(file(
            "cloud differs from",
            &config.cloud,
            found.cloud,
            expected.cloud,
        ));
        if let Particles::File(path) = &config.particles {
            differences.extend(file(
                "particles differ from",
                path,
                found.particles,
                expected.particles,
            ));
        }
        if !expected.command.counts_per_tile(config) && found.count != expected.count {
            differences.push(format!(
                "its job had {} {}, {} has {}",
                found.count,
                expected.command.counted(),
                expected.command.counted_file(config).display(),
                expected.count
            ));
        }
        (!differences.is_empty()).then(|| differences.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            tile: Tile {
                index: 3,
                count: 16,
            },
            job: JobIdentity {
                version: "0.1.0".into(),
                settings: 0x0123_4567_89ab_cdef,
                cloud: FileIdentity {
                    bytes: 1_048_576,
                    sample: 7,
                },
                particles: FileIdentity {
                    bytes: 65_536,
                    sample: u64::MAX,
                },
                count: 3_000,
                command: TileCommand::Run,
            },
        }
    }

    #[test]
    fn provenance_reads_back_what_it_writes() {
        let line = provenance().to_comment();
        assert_eq!(
            line,
            "mlsproj tile 3/16 version 0.1.0 job 0123456789abcdef cloud 1048576:0000000000000007 \
             particles 65536:ffffffffffffffff count 3000 command run"
        );
        assert_eq!(Provenance::parse(&line), Some(provenance()));
        let comments = ["mlsproj 0.1.0".to_owned(), line.clone()];
        assert_eq!(Provenance::find(&comments), Some(provenance()));
        // Tiles written before `normals` had tiles are `run` tiles.
        let older = line.replace(" command run", "");
        assert_eq!(Provenance::parse(&older), Some(provenance()));
        let mut normals = provenance();
        normals.job.command = TileCommand::Normals;
        let line = normals.to_comment();
        assert!(line.ends_with(" command normals"), "{line}");
        assert_eq!(Provenance::parse(&line), Some(normals));
    }

    #[test]
    fn other_lines_are_no_provenance() {
        let line = provenance().to_comment();
        for other in [
            "mlsproj 0.1.0",
            "mlsproj tile 3/16",
            &line.replace("job ", "jobs "),
            &line.replace(" count 3000", ""),
            &line.replace("3/16", "16/16"),
            &line.replace("1048576:", "1048576-"),
            &line.replace("command run", "command merge"),
        ] {
            assert_eq!(Provenance::parse(other), None, "{other}");
        }
    }

    #[test]
    fn settings_that_shape_values_change_the_fingerprint_and_the_others_do_not() {
        let config = |fields: &str| {
            Config::parse(&format!(
                r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", {fields})"#
            ))
            .unwrap()
        };
        let base = settings_fingerprint(&config("support: Radius(0.15)"));
        let threads = config("support: Radius(0.15), threads: 3, encoding: Ascii");
        assert_eq!(settings_fingerprint(&threads), base);
        let moved = Config {
            cloud: "elsewhere/c.ply".into(),
            particles: Particles::File("elsewhere/p.ply".into()),
            output: "elsewhere/o.ply".into(),
            ..config("support: Radius(0.15)")
        };
        assert_eq!(settings_fingerprint(&moved), base);
        let other = [
            "support: Radius(0.16)",
            "support: Radius(0.15), degree: 1",
            "support: Radius(0.15), attributes: false",
            "support: Radius(0.15), tolerance: 0.2000001",
        ];
        for fields in other {
            assert_ne!(settings_fingerprint(&config(fields)), base, "{fields}");
        }
        let smoothing = Config::parse(
            r#"(cloud: "c.ply", particles: Cloud, output: "o.ply", support: Radius(0.15))"#,
        )
        .unwrap();
        assert_ne!(settings_fingerprint(&smoothing), base);
    }

    #[test]
    fn a_files_identity_follows_its_content_wherever_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            FileIdentity::of(&path).unwrap()
        };
        // Large enough to be sampled, not read whole.
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let identity = write("a.bin", &content);
        assert_eq!(identity.bytes, 3_000_000);
        assert_eq!(write("copy.bin", &content), identity);
        let mut last = content.clone();
        *last.last_mut().unwrap() ^= 1;
        assert_ne!(write("last.bin", &last), identity);
        let mut early = content.clone();
        early[100] ^= 1;
        assert_ne!(write("early.bin", &early), identity);
        assert_ne!(write("short.bin", &content[1..]), identity);
        assert_ne!(write("small.bin", b"ply\n"), write("other.bin", b"ply\r"));
        let err = FileIdentity::of(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
