//! Point files read chunk by chunk: memory holds one chunk (or one pass
//! of chunks, `pipeline`) of a streamed file, whatever its size.

use std::path::Path;

use crate::cloud::{PointCloud, Precision};
use crate::error::Result;

use nalgebra::Point3;

use super::{LasReader, PlyVertexReader, Scans, Signature, read_by_extension, read_e57, signature};

/// Points per chunk when streaming (reading, writing, merging): bounds the
/// memory of one chunk's rows and output columns whatever the file size,
/// and is large enough to keep every core busy. The projection reads
/// passes of up to 2²⁴ particles (`pipeline::pass_size`).
pub const CHUNK: usize = 1 << 20;

/// A point file read chunk by chunk: PLY, LAS and LAZ are streamed from
/// disk, so the number of points is bounded by the disk, not by memory; a
/// text cloud is parsed whole (its rule for columns needs every row), as
/// are PCD and E57 files, and handed out in chunks.
#[derive(Debug)]
pub enum PointReader {
    /// A PLY file, streamed.
    Ply(Box<PlyVertexReader>),
    /// A LAS or LAZ file, streamed (LAZ decompressed chunk by chunk).
    Las(Box<LasReader>),
    /// A cloud in memory (a parsed text, PCD or E57 file, or points
    /// already read).
    Memory {
        /// The points not yet handed out, or all of them.
        cloud: PointCloud,
        /// The first point not yet handed out.
        next: usize,
        /// The number of points.
        total: usize,
        /// The scanner positions of an E57 file's scans.
        scanners: Vec<Point3<f64>>,
        /// A text file's comment lines before its first point.
        comments: Vec<String>,
    },
}

impl PointReader {
    /// Opens a point file, choosing the reader as [`read_points`] does.
    pub fn open(path: &Path) -> Result<Self> {
        match signature(path)? {
            Signature::Ply => Ok(PointReader::Ply(Box::new(PlyVertexReader::open(path)?))),
            Signature::Las => Ok(PointReader::Las(Box::new(LasReader::open(path)?))),
            Signature::E57 => {
                let Scans { cloud, scanners } = read_e57(path)?;
                let mut reader = PointReader::from_cloud(cloud);
                if let PointReader::Memory { scanners: kept, .. } = &mut reader {
                    *kept = scanners;
                }
                Ok(reader)
            }
            Signature::Other => {
                let (cloud, comments) = read_by_extension(path)?;
                let mut reader = PointReader::from_cloud(cloud);
                if let PointReader::Memory { comments: kept, .. } = &mut reader {
                    *kept = comments;
                }
                Ok(reader)
            }
        }
    }

    /// Hands out the points of a cloud already in memory.
    pub fn from_cloud(cloud: PointCloud) -> Self {
        let total = cloud.len();
        PointReader::Memory {
            cloud,
            next: 0,
            total,
            scanners: Vec::new(),
            comments: Vec::new(),
        }
    }

    /// Where the scanner of each scan stood, in the cloud's coordinates,
    /// indexed by the points' `scan_index` attribute: known for E57 files,
    /// empty for other formats.
    pub fn scanner_positions(&self) -> &[Point3<f64>] {
        match self {
            PointReader::Memory { scanners, .. } => scanners,
            PointReader::Ply(_) | PointReader::Las(_) => &[],
        }
    }

    /// Reads positions, normals and colours only, for a cloud whose
    /// attributes play no part (its surface is built, it is not written):
    /// LAS and LAZ files then skip decoding them (their RGB, an attribute
    /// there, too); other formats read them as usual. Called before the
    /// first read.
    pub fn skip_attributes(&mut self) {
        if let PointReader::Las(reader) = self {
            reader.skip_attributes();
        }
    }

    /// Number of points in the file.
    pub fn len(&self) -> usize {
        match self {
            PointReader::Ply(reader) => reader.len(),
            PointReader::Las(reader) => reader.len(),
            PointReader::Memory { total, .. } => *total,
        }
    }

    /// True when the points are held in memory (a parsed text, PCD or E57
    /// file, or a cloud given): handing them all out copies nothing.
    pub fn is_held(&self) -> bool {
        matches!(self, PointReader::Memory { .. })
    }

    /// True when the file has no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's comments (a PLY header's, a LAS provenance VLR's, a text
    /// file's `# …` lines before its first point; none for a cloud in memory):
    /// where a tile output records the job it belongs to.
    pub fn comments(&self) -> &[String] {
        match self {
            PointReader::Ply(reader) => reader.comments(),
            PointReader::Las(reader) => reader.comments(),
            PointReader::Memory { comments, .. } => comments,
        }
    }

    /// Precision of the positions in the file.
    pub fn precision(&self) -> Precision {
        match self {
            PointReader::Ply(reader) => reader.precision(),
            PointReader::Las(reader) => reader.precision(),
            PointReader::Memory { cloud, .. } => cloud.precision,
        }
    }

    /// The next up to `max` points, with every property of the file (an
    /// empty cloud, properties still named, at the end).
    pub fn read_chunk(&mut self, max: usize) -> Result<PointCloud> {
        match self {
            PointReader::Ply(reader) => reader.read_chunk(max),
            PointReader::Las(reader) => reader.read_chunk(max),
            PointReader::Memory { cloud, next, .. } => {
                if *next == 0 && max >= cloud.len() {
                    // All of it at once: hand the cloud over rather than
                    // copy it, leaving its properties, empty, for the end.
                    *next = cloud.len();
                    let rest = cloud.slice(0..0);
                    return Ok(std::mem::replace(cloud, rest));
                }
                let end = cloud.len().min(*next + max);
                let chunk = cloud.slice((*next).min(end)..end);
                *next = end;
                Ok(chunk)
            }
        }
    }

    /// Hands each chunk of the file to `each`, in order, with the position in
    /// the file of its first point, ending with an empty chunk (its properties
    /// still named); returns the file's point count. Memory holds one chunk
    /// of a PLY file (a text file is parsed whole).
    pub fn for_each_chunk(mut self, mut each: impl FnMut(usize, &PointCloud)) -> Result<usize> {
        let total = self.len();
        let mut first = 0;
        loop {
            let chunk = self.read_chunk(CHUNK)?;
            each(first, &chunk);
            if chunk.is_empty() {
                return Ok(total);
            }
            first += chunk.len();
        }
    }

    /// Reads a point file in chunks, keeping the points `keep` picks (one flag
    /// per point of each chunk it is shown, with the position in the file of
    /// the chunk's first point); returns them and the file's point count.
    pub fn select(
        self,
        mut keep: impl FnMut(usize, &PointCloud) -> Vec<bool>,
    ) -> Result<(PointCloud, usize)> {
        let mut kept = Kept::default();
        let total =
            self.for_each_chunk(|first, chunk| kept.add(chunk.filter(&keep(first, chunk))))?;
        Ok((kept.into_cloud(), total))
    }
}

/// Points kept from the chunks of one file.
#[derive(Default)]
pub struct Kept(Option<PointCloud>);

impl Kept {
    /// Adds the points kept from the next chunk.
    pub fn add(&mut self, part: PointCloud) {
        match &mut self.0 {
            // One file, so one set of properties.
            Some(kept) => kept.append(&part),
            None => self.0 = Some(part),
        }
    }

    /// The points kept (an empty cloud when no chunk was added).
    pub fn into_cloud(self) -> PointCloud {
        self.0.unwrap_or_default()
    }
}
