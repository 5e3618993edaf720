//! Projected particles parked on disk until their count is known. A
//! seeded job learns how many particles it makes only when its last slab
//! is settled, but every output format declares the count before the
//! first row; holding the projections in memory meanwhile would cost
//! about 100 bytes per particle (5 GB for 50M).
//!
//! The spool is an unnamed temporary file beside the output (the system
//! removes it when it is closed, even if the process is killed), of fixed
//! 81-byte records.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nalgebra::{Point3, Vector3};

use crate::error::{Error, Result};
use crate::projection::Projected;
use crate::status::Status;

/// Bytes of one record: nine f64 (position, normal, the two curvatures,
/// residual), a u32 (neighbours) and five bytes (steps, status, colour).
const RECORD: usize = 9 * 8 + 4 + 5;

/// Projections written one after another.
pub struct Spool {
    file: BufWriter<File>,
    /// How errors name the spool: an unnamed file has no path, and the
    /// output's alone would blame a file not yet written (a full disk
    /// while seeding).
    path: PathBuf,
    len: usize,
}

impl Spool {
    /// A new spool in the folder of `output`.
    pub fn beside(output: &Path) -> Result<Spool> {
        let file = crate::io::unnamed_temp_beside(output)?;
        Ok(Spool {
            file: BufWriter::new(file),
            path: PathBuf::from(format!("the temporary file beside {}", output.display())),
            len: 0,
        })
    }

    /// Appends `projected`.
    pub fn push(&mut self, projected: &[Projected]) -> Result<()> {
        let mut record = [0u8; RECORD];
        for p in projected {
            encode(p, &mut record);
            self.file
                .write_all(&record)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.len += projected.len();
        Ok(())
    }

    /// The projections written, to be read back from the first.
    pub fn into_reader(self) -> Result<SpoolReader> {
        let path = self.path;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&path, e))?;
        Ok(SpoolReader {
            file: BufReader::new(file),
            path,
            left: self.len,
        })
    }
}

/// A spool read back, chunk by chunk.
pub struct SpoolReader {
    file: BufReader<File>,
    path: PathBuf,
    left: usize,
}

impl SpoolReader {
    /// Projections not yet read.
    pub fn len(&self) -> usize {
        self.left
    }

    /// True when every projection is read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The next `most` projections (fewer at the end).
    pub fn read_chunk(&mut self, most: usize) -> Result<Vec<Projected>> {
        let count = most.min(self.left);
        let mut record = [0u8; RECORD];
        let mut chunk = Vec::with_capacity(count);
        for _ in 0..count {
            self.file
                .read_exact(&mut record)
                .map_err(|e| Error::io(&self.path, e))?;
            chunk.push(decode(&record));
        }
        self.left -= count;
        Ok(chunk)
    }
}

fn encode(p: &Projected, record: &mut [u8; RECORD]) {
    let values = [
        p.position.x,
        p.position.y,
        p.position.z,
        p.normal.x,
        p.normal.y,
        p.normal.z,
        p.mean_curvature,
        p.gaussian_curvature,
        p.residual,
    ];
    for (slot, value) in record.chunks_exact_mut(8).zip(values) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
    record[72..76].copy_from_slice(&p.neighbour_count.to_le_bytes());
    record[76] = p.steps;
    record[77] = p.status.code();
    record[78..81].copy_from_slice(&p.colour);
}

fn decode(record: &[u8; RECORD]) -> Projected {
    let value = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&record[8 * i..8 * i + 8]);
        f64::from_le_bytes(bytes)
    };
    let mut count = [0u8; 4];
    count.copy_from_slice(&record[72..76]);
    Projected {
        position: Point3::new(value(0), value(1), value(2)),
        normal: Vector3::new(value(3), value(4), value(5)),
        mean_curvature: value(6),
        gaussian_curvature: value(7),
        residual: value(8),
        neighbour_count: u32::from_le_bytes(count),
        steps: record[76],
        // Written from a status's own code.
        status: Status::ALL[usize::from(record[77])],
        colour: [record[78], record[79], record[80]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_come_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::beside(&dir.path().join("out.ply")).unwrap();
        let projected: Vec<Projected> = (0..5u8)
            .map(|i| Projected {
                position: Point3::new(f64::from(i), -1.5, 1e-300),
                normal: Vector3::new(0.0, 0.6, -0.8),
                mean_curvature: -f64::from(i) / 3.0,
                gaussian_curvature: 1e12,
                residual: 0.25,
                neighbour_count: 70_000 + u32::from(i),
                steps: i,
                status: Status::ALL[usize::from(i)],
                colour: [i, 255 - i, 7],
            })
            .collect();
        spool.push(&projected[..2]).unwrap();
        spool.push(&projected[2..]).unwrap();
        let mut reader = spool.into_reader().unwrap();
        assert_eq!(reader.len(), 5);
        let mut back = reader.read_chunk(3).unwrap();
        back.extend(reader.read_chunk(3).unwrap());
        assert!(reader.is_empty());
        assert_eq!(back, projected);
    }
}
