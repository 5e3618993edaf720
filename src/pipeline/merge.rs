//! `mlsproj merge`: the outputs of `run --tile 0/N` … `run --tile N-1/N`
//! joined into the job's output, in input order, streaming.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;

use crate::cloud::{Attribute, Column};
use crate::config::Config;
use crate::error::{Error, Location, Result};
use crate::io::{self, CHUNK, PlyVertexWriter, PointReader};

use super::progress_bar;
use super::tiles::Tile;

/// What `mlsproj merge` did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// Tile outputs read.
    pub tiles: usize,
    /// Particles written.
    pub particles: usize,
    /// The merged file.
    pub output: PathBuf,
}

/// One tile output being merged: its reader and current chunk.
struct TileCursor {
    path: PathBuf,
    reader: PointReader,
    columns: Vec<Attribute>,
    /// Which of `columns` is the input position `index`.
    index_column: usize,
    next: usize,
}

impl TileCursor {
    fn open(path: PathBuf) -> Result<Self> {
        let reader = PointReader::open(&path)?;
        let mut cursor = TileCursor {
            path,
            reader,
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
        let chunk = self.reader.read_chunk(CHUNK)?;
        self.columns = io::file_columns(&chunk);
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

/// Joins the outputs of `--tile 0/N` … `--tile N-1/N` into `config.output`,
/// in input order, streaming: memory holds one chunk per tile.
pub fn merge(config: &Config, tiles: usize, progress: bool) -> Result<MergeSummary> {
    if tiles == 0 {
        return Err(Error::Invalid("merge needs at least one tile".into()));
    }
    let mut cursors = (0..tiles)
        .map(|index| {
            TileCursor::open(
                Tile {
                    index,
                    count: tiles,
                }
                .output_path(&config.output),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let total: usize = cursors.iter().map(|c| c.reader.len()).sum();
    let schema = io::schema_of(&cursors[0].columns);
    if let Some(odd) = cursors.iter().find(|c| io::schema_of(&c.columns) != schema) {
        return Err(Error::format(
            &odd.path,
            Location::File,
            "its properties differ from the first tile's",
        ));
    }
    let comments = vec![format!(
        "mlsproj {} merge of {tiles} tiles",
        env!("CARGO_PKG_VERSION")
    )];
    let mut writer = PlyVertexWriter::create(
        &config.output,
        &schema,
        total,
        config.encoding.into(),
        &comments,
    )?;
    let bar = progress_bar(progress, "merging", Some(total));
    let empty = |columns: &[Attribute]| -> Vec<Attribute> {
        columns
            .iter()
            .map(|c| Attribute {
                name: c.name.clone(),
                values: c.values.slice(0..0),
            })
            .collect()
    };
    let mut pending = empty(&cursors[0].columns);
    let mut pending_rows = 0;
    let mut next_index = 0u32;
    // The tiles by the input position of their next particle: particles in
    // no spatial order alternate between tiles at every one.
    let mut heads: BinaryHeap<Reverse<(u32, usize)>> = cursors
        .iter()
        .enumerate()
        .filter_map(|(tile, cursor)| cursor.head().map(|head| Reverse((head, tile))))
        .collect();
    while (next_index as usize) < total {
        let Some(Reverse((head, tile))) = heads.pop().filter(|top| top.0.0 == next_index) else {
            return Err(Error::Invalid(format!(
                "merge: particle {next_index} is in no tile output (were all {tiles} tiles run on the same particles?)"
            )));
        };
        let cursor = &mut cursors[tile];
        // The run of consecutive input positions this tile holds here.
        let start = cursor.next;
        let mut end = start + 1;
        while cursor.index().get(end) == Some(&(head + (end - start) as u32)) {
            end += 1;
        }
        for (to, from) in pending.iter_mut().zip(&cursor.columns) {
            to.values.extend_from(&from.values, start..end);
        }
        pending_rows += end - start;
        next_index += (end - start) as u32;
        cursor.next = end;
        cursor.refill()?;
        if let Some(head) = cursor.head() {
            heads.push(Reverse((head, tile)));
        }
        if pending_rows >= CHUNK {
            writer.write_chunk(&pending)?;
            bar.inc(pending_rows as u64);
            pending = empty(&pending);
            pending_rows = 0;
        }
    }
    writer.write_chunk(&pending)?;
    bar.finish_and_clear();
    writer.finish()?;
    Ok(MergeSummary {
        tiles,
        particles: total,
        output: config.output.clone(),
    })
}
