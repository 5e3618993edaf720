//! `mlsproj merge`: the outputs of `run --tile 0/N` … `run --tile N-1/N`
//! (or of `normals --tile`) joined into the job's output, in input order,
//! streaming.
//!
//! Every tile is checked before anything is written: it must exist, record
//! that it is tile `I/N` of the job the config describes now (its
//! [`Provenance`]), and have the first tile's properties; together the
//! tiles must hold the job's particle count (a `Seed` job's tile, the count
//! its run recorded). A tile left from another
//! version of the job (a config or an input changed, and only some tiles
//! ran again), or written by the other command, is refused by name, with
//! what differs. Which command's tiles are merged, tile 0 says.
//!
//! A `Seed` job's tiles hold runs of consecutive slabs, each numbered from
//! 0: they are written one after another, `index` numbered on
//! ([`concatenate`]). Other jobs' tiles hold particles of one file:
//! particles of one tile are in input order, those of different tiles
//! interleave, so the merge reads all tiles at once. Past 500 tiles,
//! groups of tiles are merged first into unnamed temporary files in the
//! output's folder, which are then merged: open files stay within the
//! common limit of 1024 for every tile count up to [`Tile::MAX_COUNT`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use crate::cloud::{Attribute, Column, ScalarKind};
use crate::config::Config;
use crate::error::{Error, Location, Result};
use crate::io::{
    self, CHUNK, OutputWriter, PlyEncoding, PlyVertexReader, PlyVertexWriter, PointReader,
};

use super::progress_bar;
use super::provenance::{JobIdentity, Provenance, TileCommand};
use super::tiles::Tile;

/// Tiles (or merged groups) read at once. Above it, tiles are merged in
/// groups of at most this many first; the open files then peak at a
/// group, the groups merged so far (unnamed files stay open until read)
/// and the file being written: 500 + 132 + 1 for [`Tile::MAX_COUNT`]
/// tiles, well under the usual soft limit of 1024 open files.
const GROUP: usize = 500;

/// Fewest particles read from a tile at a time. Each read takes a share of
/// [`CHUNK`] (memory holds about one chunk whatever the tile count), but
/// not so few that reads cost more than they carry.
const MIN_READ: usize = 1 << 12;

/// What `mlsproj merge` did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// The command whose tiles were merged.
    pub command: TileCommand,
    /// Tile outputs read.
    pub tiles: usize,
    /// Particles (or, for `normals`, points) written.
    pub particles: usize,
    /// Passes over the particles: 1, or more when groups of tiles were
    /// merged first (more than 500 tiles, or than the group asked for).
    pub passes: usize,
    /// The merged file.
    pub output: PathBuf,
}

/// Joins the outputs of `--tile 0/N` … `--tile N-1/N` into `config.output`,
/// in input order, streaming, after checking that every tile is one of the
/// job `config` describes (see the module's documentation).
pub fn merge(config: &Config, tiles: usize, progress: bool) -> Result<MergeSummary> {
    merge_in_groups(config, tiles, progress, GROUP)
}

/// [`merge`] reading at most `group` files at once (at least 2), for a
/// process allowed fewer open files than usual; the result is the same
/// whatever the group.
pub fn merge_in_groups(
    config: &Config,
    tiles: usize,
    progress: bool,
    group: usize,
) -> Result<MergeSummary> {
    Tile::new(0, tiles).map_err(|message| Error::Invalid(format!("merge: {message}")))?;
    if group < 2 {
        return Err(Error::Invalid(format!(
            "merge: groups of {group} tiles: at least 2 are merged at once"
        )));
    }
    let tile = |index| Tile {
        index,
        count: tiles,
    };
    let command = command_of(config, tile(0));
    let job = JobIdentity::of_command(config, command)?;
    // Every tile checked, one file open at a time, before anything is
    // written.
    let mut schema = None;
    let mut total = 0;
    for index in 0..tiles {
        let (path, mut reader) = open_tile(config, &job, tile(index))?;
        let columns = tile_columns(&reader.read_chunk(0)?);
        let found = io::schema_of(&columns);
        let first = schema.get_or_insert_with(|| found.clone());
        if found != *first {
            return Err(Error::format(
                path,
                Location::File,
                "its properties differ from the first tile's",
            ));
        }
        if !found.contains(&("index".to_owned(), ScalarKind::U32)) {
            return Err(Error::format(
                path,
                Location::File,
                "no uint 'index' property: not an mlsproj tile output",
            ));
        }
        total += reader.len();
    }
    // A `Seed` job's `run` tiles are checked against the counts they
    // recorded (`open_tile`).
    let seeded = command.counts_per_tile(config);
    if !seeded && total as u64 != job.count {
        return Err(Error::format(
            command.counted_file(config),
            Location::File,
            format!(
                "the {tiles} tiles hold {total} {what}, the job has {} \
                 (a tile was altered or written by another job)",
                job.count,
                what = command.counted()
            ),
        ));
    }
    let schema = schema.expect("at least one tile");
    let output = Pass::Output {
        index: command == TileCommand::Run,
    };
    let comments = vec![format!(
        "mlsproj {} merge of {tiles} tiles",
        env!("CARGO_PKG_VERSION")
    )];
    let create = |schema: &[(String, ScalarKind)]| {
        OutputWriter::create(
            &config.output,
            schema,
            total,
            config.encoding.into(),
            &comments,
        )
    };
    let merging = || progress_bar(progress, "merging", Some(total));
    let written: Vec<_> = schema
        .iter()
        .filter(|(name, _)| output.writes(name))
        .cloned()
        .collect();
    let passes = if seeded {
        let bar = merging();
        concatenate(config, &job, tiles, create(&written)?, &bar)?;
        bar.finish_and_clear();
        1
    } else {
        let mut sources: Vec<Source> = (0..tiles).map(|index| Source::Tile(tile(index))).collect();
        let mut passes = 1;
        while sources.len() > group {
            sources = merge_groups(config, &job, sources, group, &schema, progress)?;
            passes += 1;
        }
        let cursors = open_sources(config, &job, sources)?;
        let bar = merging();
        join(cursors, create(&written)?, output, &bar)?;
        bar.finish_and_clear();
        passes
    };
    Ok(MergeSummary {
        command,
        tiles,
        particles: total,
        passes,
        output: config.output.clone(),
    })
}

/// The command whose tiles are merged: the one tile 0 records; `run` when
/// it records none or cannot be read ([`open_tile`] then says why).
fn command_of(config: &Config, first: Tile) -> TileCommand {
    PointReader::open(&first.output_path(&config.output))
        .ok()
        .and_then(|reader| Provenance::find(reader.comments()))
        .map_or(TileCommand::Run, |provenance| provenance.job.command)
}

/// Opens the output of `tile` and checks that it is that tile of `job`.
fn open_tile(config: &Config, job: &JobIdentity, tile: Tile) -> Result<(PathBuf, PointReader)> {
    let path = tile.output_path(&config.output);
    let refuse = |message: String| Error::format(&path, Location::File, message);
    if let Err(error) = std::fs::metadata(&path) {
        return Err(match error.kind() {
            std::io::ErrorKind::NotFound => refuse(format!(
                "tile {tile} is missing (run it with --tile {tile})"
            )),
            _ => Error::io(&path, error),
        });
    }
    let reader = PointReader::open(&path)?;
    let Some(provenance) = Provenance::find(reader.comments()) else {
        return Err(refuse(format!(
            "it does not say which job it is a tile of (not a tile output, or written \
             by an older mlsproj): run it again with --tile {tile}"
        )));
    };
    if provenance.tile != tile {
        return Err(refuse(format!(
            "it holds tile {}, not {tile} (a copy of another tile?): run it again with \
             --tile {tile}",
            provenance.tile
        )));
    }
    if let Some(differences) = provenance.differences(job, config) {
        return Err(refuse(format!(
            "a tile of another job: {differences}; run it again with --tile {tile}"
        )));
    }
    // A seeded tile records the seeds it made (its job's count is known
    // only once every tile ran).
    if job.command.counts_per_tile(config) && provenance.job.count != reader.len() as u64 {
        return Err(refuse(format!(
            "it holds {} particles, its run made {} (altered since?): run it again with \
             --tile {tile}",
            reader.len(),
            provenance.job.count
        )));
    }
    Ok((path, reader))
}

/// What one pass reads: a tile's output, or the merge of a group of
/// tiles (an unnamed temporary file, open at its start).
enum Source {
    Tile(Tile),
    Merged {
        file: File,
        /// The tiles it holds.
        tiles: Range<usize>,
    },
}

/// How messages name the merge of `tiles` into `output`.
fn merged_name(output: &Path, tiles: &Range<usize>) -> PathBuf {
    PathBuf::from(format!(
        "{} (tiles {} to {} merged)",
        output.display(),
        tiles.start,
        tiles.end - 1
    ))
}

/// Opens the sources of one pass, each reading its share of [`CHUNK`] at a
/// time; tiles are checked again, since they may have been rerun since.
fn open_sources(config: &Config, job: &JobIdentity, sources: Vec<Source>) -> Result<Vec<Cursor>> {
    let rows = (CHUNK / sources.len().max(1)).max(MIN_READ);
    sources
        .into_iter()
        .map(|source| {
            let (path, reader) = match source {
                Source::Tile(tile) => open_tile(config, job, tile)?,
                Source::Merged { file, tiles } => {
                    let path = merged_name(&config.output, &tiles);
                    let reader = PlyVertexReader::from_file(file, &path)?;
                    (path, PointReader::Ply(Box::new(reader)))
                }
            };
            Cursor::open(path, reader, rows)
        })
        .collect()
}

/// One pass of a merge in groups: each run of at most `group` sources
/// merged into an unnamed temporary file in the output's folder (binary
/// PLY, which keeps every value exactly), in order, so that their merge is
/// the merge of all. Unnamed files leave nothing behind, whatever ends
/// the process.
fn merge_groups(
    config: &Config,
    job: &JobIdentity,
    sources: Vec<Source>,
    group: usize,
    schema: &[(String, ScalarKind)],
    progress: bool,
) -> Result<Vec<Source>> {
    // Groups of equal size: 1,200 tiles make 3 groups of 400, not 500,
    // 500 and 200.
    let groups = sources.len().div_ceil(group);
    let size = sources.len().div_ceil(groups);
    let bar = progress_bar(progress, "merging groups", None);
    let mut merged = Vec::with_capacity(groups);
    let mut rest = sources.into_iter().peekable();
    while rest.peek().is_some() {
        let members: Vec<Source> = rest.by_ref().take(size).collect();
        let tiles = span(&members);
        let path = merged_name(&config.output, &tiles);
        let cursors = open_sources(config, job, members)?;
        let count = cursors.iter().map(|cursor| cursor.reader.len()).sum();
        let file = io::unnamed_temp_beside(&config.output)?;
        let copy = file.try_clone().map_err(|error| Error::io(&path, error))?;
        let writer = OutputWriter::Ply(PlyVertexWriter::create_in(
            copy,
            &path,
            schema,
            count,
            PlyEncoding::BinaryLittleEndian,
            &[],
        )?);
        join(cursors, writer, Pass::Group, &bar)?;
        let mut file = file;
        file.seek(SeekFrom::Start(0))
            .map_err(|error| Error::io(&path, error))?;
        merged.push(Source::Merged { file, tiles });
    }
    bar.finish_and_clear();
    Ok(merged)
}

/// The tiles a run of sources holds.
fn span(sources: &[Source]) -> Range<usize> {
    let tiles = |source: &Source| match source {
        Source::Tile(tile) => tile.index..tile.index + 1,
        Source::Merged { tiles, .. } => tiles.clone(),
    };
    let first = sources.first().map_or(0..0, tiles);
    let last = sources.last().map_or(0..0, tiles);
    first.start..last.end
}

/// One file being merged: its reader and current chunk.
struct Cursor {
    path: PathBuf,
    reader: PointReader,
    /// Particles read at a time.
    rows: usize,
    columns: Vec<Attribute>,
    /// Which of `columns` is the input position `index`.
    index_column: usize,
    next: usize,
}

impl Cursor {
    fn open(path: PathBuf, reader: PointReader, rows: usize) -> Result<Self> {
        let mut cursor = Cursor {
            path,
            reader,
            rows,
            columns: Vec::new(),
            index_column: 0,
            next: 0,
        };
        cursor.refill()?;
        Ok(cursor)
    }

    /// Reads the next chunk when the current one is used up.
    fn refill(&mut self) -> Result<()> {
        if self.next < self.index().len() {
            return Ok(());
        }
        let chunk = self.reader.read_chunk(self.rows)?;
        self.columns = tile_columns(&chunk);
        self.index_column = self
            .columns
            .iter()
            .position(|c| c.name == "index" && matches!(c.values, Column::U32(_)))
            .ok_or_else(|| {
                Error::format(
                    &self.path,
                    Location::File,
                    "no uint 'index' property: not an mlsproj tile output",
                )
            })?;
        self.next = 0;
        Ok(())
    }

    /// The input positions of the current chunk's particles.
    fn index(&self) -> &[u32] {
        match self.columns.get(self.index_column).map(|c| &c.values) {
            Some(Column::U32(index)) => index,
            _ => &[],
        }
    }

    /// The input position of the next particle, if any.
    fn head(&self) -> Option<u32> {
        self.index().get(self.next).copied()
    }
}

/// What a pass of [`join`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// A group of tiles, into a temporary file read by the next pass: every
    /// property, some of the particles.
    Group,
    /// The output: every particle; the input positions (`index`) only when
    /// `index` (a `run`'s output has them; a `normals` output is the
    /// cloud's properties alone, like a whole `normals` run's).
    Output { index: bool },
}

impl Pass {
    /// Whether the pass writes the property `name`.
    fn writes(self, name: &str) -> bool {
        match self {
            Pass::Group => true,
            Pass::Output { index } => index || name != "index",
        }
    }
}

/// Writes the particles of `cursors` to `writer` in input order, refusing
/// a particle found twice (or a file out of order) and, in the output's
/// pass, a particle found in no file: the output then holds input
/// positions 0, 1, 2, … each once.
fn join(
    mut cursors: Vec<Cursor>,
    mut writer: OutputWriter,
    pass: Pass,
    bar: &ProgressBar,
) -> Result<()> {
    let whole = pass != Pass::Group;
    let empty = |columns: &[Attribute]| -> Vec<Attribute> {
        columns
            .iter()
            .filter(|c| pass.writes(&c.name))
            .map(|c| Attribute {
                name: c.name.clone(),
                values: c.values.slice(0..0),
            })
            .collect()
    };
    let Some(first) = cursors.first() else {
        return writer.finish();
    };
    let mut pending = empty(&first.columns);
    let mut pending_rows = 0;
    // The last input position written, and the file it came from.
    let mut last: Option<(u64, usize)> = None;
    // The files by the input position of their next particle: particles in
    // no spatial order alternate between files at every one.
    let mut heads: BinaryHeap<Reverse<(u32, usize)>> = cursors
        .iter()
        .enumerate()
        .filter_map(|(file, cursor)| cursor.head().map(|head| Reverse((head, file))))
        .collect();
    while let Some(Reverse((head, file))) = heads.pop() {
        let expected = last.map_or(0, |(position, _)| position + 1);
        if u64::from(head) < expected {
            let (_, previous) = last.expect("a particle was written before");
            return Err(twice(head, &cursors[previous].path, &cursors[file].path));
        }
        if whole && u64::from(head) > expected {
            return Err(Error::format(
                &cursors[file].path,
                Location::File,
                format!("particle {expected} is in no tile, and this one follows it"),
            ));
        }
        let cursor = &mut cursors[file];
        // The run of consecutive input positions this file holds here.
        let start = cursor.next;
        let mut end = start + 1;
        while cursor.index().get(end).map(|&i| u64::from(i))
            == Some(u64::from(head) + (end - start) as u64)
        {
            end += 1;
        }
        let written = cursor.columns.iter().filter(|c| pass.writes(&c.name));
        for (to, from) in pending.iter_mut().zip(written) {
            to.values.extend_from(&from.values, start..end);
        }
        pending_rows += end - start;
        last = Some((u64::from(head) + (end - start - 1) as u64, file));
        cursor.next = end;
        cursor.refill()?;
        if let Some(head) = cursor.head() {
            heads.push(Reverse((head, file)));
        }
        if pending_rows >= CHUNK {
            writer.write_chunk(&pending)?;
            bar.inc(pending_rows as u64);
            pending = empty(&pending);
            pending_rows = 0;
        }
    }
    writer.write_chunk(&pending)?;
    bar.inc(pending_rows as u64);
    writer.finish()
}

/// Writes the tiles of a `Seed` job to `writer` one after another, in
/// tile order, which is the order of their slabs and so the whole run's.
/// Each tile numbers its seeds 0, 1, 2, … (it cannot know how many the
/// tiles before it made); their `index` is numbered on from the tiles
/// before, so that the output holds 0, 1, 2, … as a whole run's does.
fn concatenate(
    config: &Config,
    job: &JobIdentity,
    tiles: usize,
    mut writer: OutputWriter,
    bar: &ProgressBar,
) -> Result<()> {
    let mut offset = 0u32;
    for index in 0..tiles {
        let (path, reader) = open_tile(
            config,
            job,
            Tile {
                index,
                count: tiles,
            },
        )?;
        let mut cursor = Cursor::open(path, reader, CHUNK)?;
        let mut expected = 0u32;
        while !cursor.index().is_empty() {
            let rows = cursor.index().len();
            if let Some(at) = (0..rows).find(|&i| cursor.index()[i] != expected + i as u32) {
                return Err(Error::format(
                    &cursor.path,
                    Location::File,
                    format!(
                        "its particle {} has index {}: a seeded tile numbers its particles 0, 1, 2, …",
                        expected as usize + at,
                        cursor.index()[at]
                    ),
                ));
            }
            expected += rows as u32;
            if let Column::U32(values) = &mut cursor.columns[cursor.index_column].values {
                values.iter_mut().for_each(|value| *value += offset);
            }
            writer.write_chunk(&cursor.columns)?;
            bar.inc(rows as u64);
            cursor.next = rows;
            cursor.refill()?;
        }
        offset += expected;
    }
    writer.finish()
}

/// The refusal of particle `index`, met again in `file` after `previous`.
fn twice(index: u32, previous: &Path, file: &Path) -> Error {
    let message = if previous == file {
        format!("particle {index} comes twice, or out of input order")
    } else {
        format!(
            "particle {index} is in this tile and in {}",
            previous.display()
        )
    };
    Error::format(file, Location::File, message)
}

/// A tile output's columns as merge reads them: a text tile reads every
/// column back as double, so an `index` of whole numbers is turned back
/// into the uint it was written as (PLY and LAS tiles keep the type).
fn tile_columns(chunk: &crate::cloud::PointCloud) -> Vec<Attribute> {
    let mut columns = io::file_columns(chunk);
    for column in columns.iter_mut().filter(|c| c.name == "index") {
        if let Column::F64(values) = &column.values
            && values
                .iter()
                .all(|v| v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(v))
        {
            column.values = Column::U32(values.iter().map(|&v| v as u32).collect());
        }
    }
    columns
}
