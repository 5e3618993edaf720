//! Reading the vertices of PLY files, streamed chunk by chunk so that clouds
//! larger than memory can be processed.
//!
//! ply-rs-bw parses the header; the body is decoded here. Every body
//! encoding is turned into packed records (the vertex's scalar properties
//! back to back) that one generic decoder reads column by column at fixed
//! offsets: binary records without lists are decoded straight out of large
//! blocks read from the file, records with lists are packed one by one, and
//! ascii rows are parsed into little-endian packed records.

use super::ply_layout::*;
use super::scalar::{
    BigEndian, ByteOrder, LittleEndian, decode_f64, parse_f64, parse_into, size_of_kind,
};
use super::{BLOCK_BYTES, MAX_LINE_BYTES, read_line};
use crate::cloud::{PointCloud, Precision, ScalarKind};
use crate::error::{Error, Location, Result};
use ply_rs_bw::parser::{Parser, Reader};
use ply_rs_bw::ply::{DefaultElement, Encoding};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Headers longer than this are rejected rather than read into memory: a
/// binary file with a corrupt header would otherwise be read as one line.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Buffer for the record-by-record paths (ascii, lists); the fast path
/// reads whole blocks past it.
const READ_BUFFER_BYTES: usize = 1 << 16;

/// The file after its header, with the position (line number) reached.
#[derive(Debug)]
struct Body {
    path: PathBuf,
    source: BufReader<File>,
    /// Number of the last line read (ascii bodies).
    line: usize,
    /// The last line read (ascii bodies), reused to avoid allocations.
    text: Vec<u8>,
}

impl Body {
    /// An I/O error on this file.
    fn io_error(&self, error: io::Error) -> Error {
        Error::io(&self.path, error)
    }

    /// The error for a body that ends inside record `index` of `element`.
    fn truncated(&self, element: &Element, index: usize) -> Error {
        Error::format(
            &self.path,
            Location::Element {
                element: element.name.clone(),
                index,
            },
            format!(
                "the file ends before this {} is complete, but the header declares {} \
                 (the count does not match the body)",
                element.name, element.count
            ),
        )
    }

    /// Fills `buffer` as far as the file allows; returns the bytes read.
    fn read_full(&mut self, buffer: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while let Some(rest) = buffer.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            match self.source.read(rest) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.io_error(error)),
            }
        }
        Ok(filled)
    }

    /// Skips up to `count` bytes; returns how many the file had.
    fn skip(&mut self, count: u64) -> Result<u64> {
        let mut skipped = 0;
        while skipped < count {
            let available = match self.source.fill_buf() {
                Ok(buffer) => buffer.len(),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.io_error(error)),
            };
            if available == 0 {
                break;
            }
            let step =
                usize::try_from(count - skipped).map_or(available, |left| left.min(available));
            self.source.consume(step);
            skipped += step as u64;
        }
        Ok(skipped)
    }

    /// Reads the `rows` records of `element` from record `first` on, of
    /// `stride` bytes each, into `block`.
    fn read_block(
        &mut self,
        element: &Element,
        first: usize,
        stride: usize,
        rows: usize,
        block: &mut Vec<u8>,
    ) -> Result<()> {
        block.resize(rows * stride, 0);
        let read = self.read_full(block)?;
        if read < block.len() {
            return Err(self.truncated(element, first + read / stride));
        }
        Ok(())
    }

    /// Reads one binary value of `kind` as `f64` (list lengths); `None` at
    /// the end of the file.
    fn read_value<O: ByteOrder>(&mut self, kind: ScalarKind) -> Result<Option<f64>> {
        let mut bytes = [0; 8];
        let size = size_of_kind(kind);
        let value = &mut bytes[..size];
        Ok((self.read_full(value)? == size).then(|| decode_f64::<O>(kind, value)))
    }

    /// Reads record `index` of `element` from a binary body, copying its
    /// scalars into `packed` (the record without its lists) when given.
    fn walk_record<O: ByteOrder>(
        &mut self,
        element: &Element,
        index: usize,
        mut packed: Option<&mut [u8]>,
    ) -> Result<()> {
        let mut offset = 0;
        for property in &element.properties {
            let complete = match property.shape {
                Shape::Scalar(kind) => {
                    let size = size_of_kind(kind);
                    let read = match packed.as_deref_mut() {
                        Some(packed) => self.read_full(&mut packed[offset..offset + size])? as u64,
                        None => self.skip(size as u64)?,
                    };
                    offset += size;
                    read == size as u64
                }
                Shape::List { len, item } => match self.read_value::<O>(len)? {
                    None => false,
                    Some(items) if items < 0.0 => {
                        return Err(Error::format(
                            &self.path,
                            Location::Element {
                                element: element.name.clone(),
                                index,
                            },
                            format!("list '{}' has the negative length {items}", property.name),
                        ));
                    }
                    Some(items) => {
                        let bytes = (items as u64).saturating_mul(size_of_kind(item) as u64);
                        self.skip(bytes)? == bytes
                    }
                },
            };
            if !complete {
                return Err(self.truncated(element, index));
            }
        }
        Ok(())
    }

    /// Moves to the next non-blank line of an ascii body; `None` at the end
    /// of the file, otherwise its number and its text without surrounding
    /// whitespace (so CRLF line ends are accepted).
    fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        loop {
            let read = read_line(&mut self.source, &mut self.text);
            self.line += 1;
            match read.map_err(|error| self.io_error(error))? {
                Some(0) => return Ok(None),
                Some(_) => {}
                None => {
                    return Err(Error::format(
                        &self.path,
                        Location::Line(self.line),
                        format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                    ));
                }
            }
            if !self.text.trim_ascii().is_empty() {
                break;
            }
        }
        match std::str::from_utf8(self.text.trim_ascii()) {
            Ok(text) => Ok(Some((self.line, text))),
            Err(_) => Err(Error::format(
                &self.path,
                Location::Line(self.line),
                "the line is not text",
            )),
        }
    }

    /// Skips all records of `element`.
    fn skip_element(&mut self, encoding: Encoding, element: &Element) -> Result<()> {
        match encoding {
            Encoding::Ascii => {
                for index in 0..element.count {
                    if self.next_line()?.is_none() {
                        return Err(self.truncated(element, index));
                    }
                }
                Ok(())
            }
            Encoding::BinaryLittleEndian => self.skip_records::<LittleEndian>(element),
            Encoding::BinaryBigEndian => self.skip_records::<BigEndian>(element),
        }
    }

    /// Skips all records of `element` in a binary body: one jump when the
    /// records have a fixed size, else record by record.
    fn skip_records<O: ByteOrder>(&mut self, element: &Element) -> Result<()> {
        match element.record_size() {
            Some(size) => {
                let total = (element.count as u64).saturating_mul(size as u64);
                let skipped = self.skip(total)?;
                match skipped.checked_div(size as u64) {
                    Some(complete) if skipped < total => {
                        Err(self
                            .truncated(element, usize::try_from(complete).unwrap_or(usize::MAX)))
                    }
                    _ => Ok(()),
                }
            }
            None => {
                (0..element.count).try_for_each(|index| self.walk_record::<O>(element, index, None))
            }
        }
    }
}

/// Parses `row` (one ascii record of `properties`) into the `packed` record;
/// the error message says which value is wrong.
fn parse_row(properties: &[Property], row: &str, packed: &mut [u8]) -> Result<(), String> {
    let found = || row.split_ascii_whitespace().count();
    let too_few = || {
        format!(
            "{} values, too few for the {} properties of the element",
            found(),
            properties.len()
        )
    };
    let invalid = |token: &str, kind: ScalarKind, name: &str| {
        format!("'{token}' is not a valid {kind:?} value of property '{name}'")
    };
    let mut tokens = row.split_ascii_whitespace();
    let mut offset = 0;
    for property in properties {
        let token = tokens.next().ok_or_else(too_few)?;
        match property.shape {
            Shape::Scalar(kind) => {
                let size = size_of_kind(kind);
                if !parse_into(kind, token, &mut packed[offset..offset + size]) {
                    return Err(invalid(token, kind, &property.name));
                }
                offset += size;
            }
            Shape::List { len, item } => {
                let items = parse_f64(len, token)
                    .filter(|items| *items >= 0.0)
                    .ok_or_else(|| invalid(token, len, &property.name))?;
                for _ in 0..items as u64 {
                    let token = tokens.next().ok_or_else(too_few)?;
                    if parse_f64(item, token).is_none() {
                        return Err(invalid(token, item, &property.name));
                    }
                }
            }
        }
    }
    match tokens.next() {
        Some(_) => Err(format!(
            "{} values, more than the {} properties of the element",
            found(),
            properties.len()
        )),
        None => Ok(()),
    }
}

/// Streams the vertices of a PLY file (ascii, binary little- or big-endian)
/// so that huge clouds need not fit in memory at once.
///
/// Other elements (faces, edges, …) before or after `vertex` are skipped,
/// so the vertices of a mesh are read as a cloud; list properties of the
/// vertex element are skipped too. `x y z` become positions (any numeric
/// type), `nx ny nz` normals, `red green blue` (uchar) colours, and every
/// other scalar property an attribute with its type kept. The body must hold
/// exactly the records the header declares: a short body or extra data after
/// the last element is an error.
#[derive(Debug)]
pub struct PlyVertexReader {
    body: Body,
    encoding: Encoding,
    vertex: Element,
    after: Vec<Element>,
    layout: VertexLayout,
    /// Element counts of the header, for messages about extra data.
    counts: String,
    /// The header's comment lines (without `comment `), where mlsproj
    /// records which job a tile belongs to.
    comments: Vec<String>,
    /// Index of the next vertex to read.
    next: usize,
    /// Upper bound on the vertices the rest of the file can hold, so that a
    /// corrupt count cannot make us reserve huge buffers.
    capacity_limit: usize,
    /// Reused buffer of packed vertex records.
    block: Vec<u8>,
    /// Reused buffer of the records read while `block` is decoded.
    spare: Vec<u8>,
    /// True once the data after the vertices has been checked.
    finished: bool,
    /// True after an error: the position in the file is then unknown.
    failed: bool,
}

impl PlyVertexReader {
    /// Opens `path`, parses its header and skips the elements before
    /// `vertex`, so that [`PlyVertexReader::read_chunk`] starts at the first
    /// vertex. Fails when the file has no `vertex` element with `x y z`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::io(path, error))?;
        Self::from_file(file, path)
    }

    /// [`PlyVertexReader::open`] for a file already open at its start (an
    /// unnamed temporary file, say); `path` names it in messages.
    pub fn from_file(file: File, path: &Path) -> Result<Self> {
        let file_bytes = file
            .metadata()
            .map_err(|error| Error::io(path, error))?
            .len();
        if file_bytes == 0 {
            return Err(Error::format(path, Location::File, "empty file"));
        }
        let buffered = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let mut reader = Reader::new(buffered.take(MAX_HEADER_BYTES));
        let header = Parser::<DefaultElement>::new()
            .read_header(&mut reader)
            .map_err(|error| header_error(path, &error, reader.line()))?;
        let header_lines = reader.line().saturating_sub(1);
        let limited = reader.into_inner();
        let body_bytes = file_bytes.saturating_sub(MAX_HEADER_BYTES - limited.limit());
        check_header_lines(path, &header, header_lines)?;

        let mut before = Vec::new();
        let mut vertex = None;
        let mut after = Vec::new();
        for def in header.elements.values() {
            let element = Element::new(path, def)?;
            match vertex {
                Some(_) => after.push(element),
                None if element.name == "vertex" => vertex = Some(element),
                None => before.push(element),
            }
        }
        let Some(vertex) = vertex else {
            return Err(Error::format(
                path,
                Location::File,
                "the PLY header declares no 'vertex' element",
            ));
        };
        let layout = VertexLayout::new(path, &vertex)?;
        let counts = header
            .elements
            .values()
            .map(|element| format!("{} {}", element.count, element.name))
            .collect::<Vec<_>>()
            .join(", ");
        let capacity_limit =
            usize::try_from(body_bytes / vertex.min_record_size(header.encoding) as u64)
                .unwrap_or(usize::MAX);

        let mut body = Body {
            path: path.to_path_buf(),
            source: limited.into_inner(),
            line: header_lines,
            text: Vec::new(),
        };
        for element in &before {
            body.skip_element(header.encoding, element)?;
        }
        Ok(PlyVertexReader {
            body,
            encoding: header.encoding,
            vertex,
            after,
            layout,
            counts,
            comments: header.comments,
            next: 0,
            capacity_limit,
            block: Vec::new(),
            spare: Vec::new(),
            finished: false,
            failed: false,
        })
    }

    /// Number of vertices the header declares (the body is checked against
    /// it while reading).
    pub fn len(&self) -> usize {
        self.vertex.count
    }

    /// True when the header declares no vertex.
    pub fn is_empty(&self) -> bool {
        self.vertex.count == 0
    }

    /// The header's comments, in order, without the word `comment`.
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// Precision of the positions: `Double` if any of `x y z` is a double,
    /// so that the output can keep it.
    pub fn precision(&self) -> Precision {
        self.layout.precision
    }

    /// Reads the next `max` vertices (fewer at the end of the element); an
    /// empty cloud for `max > 0` means all were read. Once the last vertex is read, the
    /// rest of the file is checked against the header, so an error about
    /// extra or missing data comes at the latest with the last chunk.
    pub fn read_chunk(&mut self, max: usize) -> Result<PointCloud> {
        if self.failed {
            return Err(Error::format(
                &self.body.path,
                Location::File,
                "reading stopped at an earlier error",
            ));
        }
        let result = self.read_next(max);
        self.failed = result.is_err();
        result
    }

    /// [`PlyVertexReader::read_chunk`] without the poisoning after errors.
    fn read_next(&mut self, max: usize) -> Result<PointCloud> {
        let rows = max.min(self.vertex.count - self.next);
        let mut cloud = self.layout.empty_cloud(rows.min(self.capacity_limit));
        match self.encoding {
            Encoding::Ascii => self.read_ascii(rows, &mut cloud)?,
            Encoding::BinaryLittleEndian => self.read_binary::<LittleEndian>(rows, &mut cloud)?,
            Encoding::BinaryBigEndian => self.read_binary::<BigEndian>(rows, &mut cloud)?,
        }
        if self.next == self.vertex.count && !self.finished {
            self.check_tail()?;
            self.finished = true;
        }
        Ok(cloud)
    }

    /// Rows of packed records decoded at once: large enough to amortise the
    /// per-property dispatch, small enough to stay in cache.
    fn rows_per_block(&self) -> usize {
        (BLOCK_BYTES / self.layout.stride).max(1)
    }

    /// Reads `rows` binary vertices in byte order `O`.
    fn read_binary<O: ByteOrder>(&mut self, rows: usize, cloud: &mut PointCloud) -> Result<()> {
        if self.vertex.record_size().is_some() {
            return self.read_records::<O>(rows, cloud);
        }
        let stride = self.layout.stride;
        let mut left = rows;
        while left > 0 {
            let block_rows = left.min(self.rows_per_block());
            self.block.resize(block_rows * stride, 0);
            for (index, packed) in self.block.chunks_exact_mut(stride).enumerate() {
                self.body
                    .walk_record::<O>(&self.vertex, self.next + index, Some(packed))?;
            }
            self.layout.decode::<O>(&self.block, cloud);
            self.next += block_rows;
            left -= block_rows;
        }
        Ok(())
    }

    /// Reads `rows` binary vertices without lists, whose records in the
    /// file are the packed records: read whole, a block at a time, the next
    /// block while this one is decoded.
    fn read_records<O: ByteOrder>(&mut self, rows: usize, cloud: &mut PointCloud) -> Result<()> {
        let stride = self.layout.stride;
        let mut left = rows;
        let mut block_rows = left.min(self.rows_per_block());
        self.body
            .read_block(&self.vertex, self.next, stride, block_rows, &mut self.block)?;
        left -= block_rows;
        while block_rows > 0 {
            let next_rows = left.min(self.rows_per_block());
            let next_first = self.next + block_rows;
            let (read, ()) = rayon::join(
                || {
                    self.body.read_block(
                        &self.vertex,
                        next_first,
                        stride,
                        next_rows,
                        &mut self.spare,
                    )
                },
                || self.layout.decode::<O>(&self.block, cloud),
            );
            read?;
            std::mem::swap(&mut self.block, &mut self.spare);
            self.next = next_first;
            block_rows = next_rows;
            left -= next_rows;
        }
        Ok(())
    }

    /// Reads `rows` ascii vertices, packing them little-endian.
    fn read_ascii(&mut self, rows: usize, cloud: &mut PointCloud) -> Result<()> {
        let stride = self.layout.stride;
        let block_bytes = self.rows_per_block() * stride;
        self.block.clear();
        for _ in 0..rows {
            let Some((line, row)) = self.body.next_line()? else {
                return Err(self.body.truncated(&self.vertex, self.next));
            };
            let start = self.block.len();
            self.block.resize(start + stride, 0);
            if let Err(message) = parse_row(&self.vertex.properties, row, &mut self.block[start..])
            {
                return Err(Error::format(
                    &self.body.path,
                    Location::Line(line),
                    message,
                ));
            }
            self.next += 1;
            if self.block.len() >= block_bytes {
                self.layout.decode::<LittleEndian>(&self.block, cloud);
                self.block.clear();
            }
        }
        self.layout.decode::<LittleEndian>(&self.block, cloud);
        Ok(())
    }

    /// Skips the elements after `vertex` and checks that nothing follows.
    fn check_tail(&mut self) -> Result<()> {
        for element in &self.after {
            self.body.skip_element(self.encoding, element)?;
        }
        let extra = match self.encoding {
            Encoding::Ascii => self
                .body
                .next_line()?
                .map(|(line, _)| (Location::Line(line), "a row".to_string())),
            Encoding::BinaryLittleEndian | Encoding::BinaryBigEndian => {
                let bytes = self.body.skip(u64::MAX)?;
                (bytes > 0).then(|| (Location::File, format!("{bytes} bytes")))
            }
        };
        match extra {
            None => Ok(()),
            Some((location, what)) => Err(Error::format(
                &self.body.path,
                location,
                format!(
                    "{what} after the elements the header declares ({}): the count does not \
                     match the body",
                    self.counts
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties() -> Vec<Property> {
        let property = |name: &str, shape| Property {
            name: name.to_string(),
            shape,
        };
        vec![
            property("x", Shape::Scalar(ScalarKind::F32)),
            property(
                "list",
                Shape::List {
                    len: ScalarKind::U8,
                    item: ScalarKind::I32,
                },
            ),
            property("label", Shape::Scalar(ScalarKind::U16)),
        ]
    }

    #[test]
    fn parse_row_packs_scalars_and_walks_lists() {
        let mut packed = [0u8; 6];
        parse_row(&properties(), "1.5 2 -7 8 513", &mut packed).unwrap();
        assert_eq!(packed[..4], 1.5f32.to_le_bytes());
        assert_eq!(packed[4..], 513u16.to_le_bytes());
    }

    #[test]
    fn parse_row_says_what_is_wrong() {
        let mut packed = [0u8; 6];
        let mut error = |row| parse_row(&properties(), row, &mut packed).unwrap_err();
        assert!(error("1.5 2 -7").contains("too few"));
        assert!(error("1.5 0 1 2").contains("more than"));
        assert!(error("1.5 1 x 2").contains("'x'"));
        assert!(error("1.5 -1 2").contains("'-1'"));
        assert!(error("1.5 0 70000").contains("'70000'"));
    }
}
