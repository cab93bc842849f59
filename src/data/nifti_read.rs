//! Reading NIfTI-1 volumes, defensively.
//!
//! The `nifti` crate parses headers and converts voxels; this module stands in front of it so that
//! every way a file can be wrong becomes an [`Error::Nifti`] naming the file, never a panic or an
//! allocation the size of a lying header:
//! - the container is sniffed from its bytes (gzip magic), not from its extension;
//! - the first 348 bytes decide the format: NIfTI-2 (`sizeof_hdr` 540), Analyze 7.5 (no magic) and
//!   header-only pairs (`ni1`) are refused by name;
//! - dimensions, datatype and `vox_offset` are validated before any voxel is read, and an
//!   uncompressed file's length is checked against the header's claim before allocating;
//! - voxels are read as `f64` with slope and intercept applied, so no integer type ever truncates a
//!   scaled value. A non-finite `scl_slope` means "no scaling" (nibabel's rule) and is reported in
//!   [`NiftiVolume::scaling_ignored`]; a finite slope with a non-finite intercept is an error.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::ArrayD;
use nifti::{InMemNiftiVolume, IntoNdArray, NiftiHeader, NiftiType};

use crate::error::{Error, NiftiProblem, Result};

const NIFTI1_HEADER_SIZE: usize = 348;
const NIFTI2_HEADER_SIZE: i32 = 540;
/// Refuse volumes of more voxels than this (8 GiB once read as f64): far beyond any cardiac MRI.
/// A header claiming more is almost certainly corrupt.
const MAX_VOXELS: u64 = 1 << 30;

/// A NIfTI-1 volume in memory: its header and its scaled voxels in the file's axis order
/// (`[x, y, z, t, …]`, only the dimensions the header declares).
#[derive(Debug, Clone)]
pub struct NiftiVolume {
    pub path: PathBuf,
    pub header: NiftiHeader,
    pub data: ArrayD<f64>,
    /// The header's `scl_slope` was not finite and was ignored.
    pub scaling_ignored: bool,
}

impl NiftiVolume {
    /// Voxel spacing of the first three axes (1.0 where the header declares fewer axes or a
    /// non-positive spacing).
    pub fn spacing3(&self) -> [f64; 3] {
        spacing3(&self.header)
    }
}

/// Voxel spacing of the first three axes, as [`NiftiVolume::spacing3`].
pub fn spacing3(header: &NiftiHeader) -> [f64; 3] {
    let ndim = header.dim[0] as usize;
    std::array::from_fn(|i| {
        if i < ndim {
            pixdim_or_one(header, i + 1)
        } else {
            1.0
        }
    })
}

/// `pixdim[i]`, or 1.0 where the header leaves it unusable (zero, negative, not finite), as
/// NIfTI readers conventionally do.
pub fn pixdim_or_one(header: &NiftiHeader, i: usize) -> f64 {
    let p = header.pixdim[i] as f64;
    if p.is_finite() && p > 0.0 {
        p
    } else {
        1.0
    }
}

/// Relative tolerance when comparing voxel spacings: headers written by different tools round
/// spacing differently in the last float digits.
pub const SPACING_TOLERANCE: f64 = 1e-3;

/// Whether two voxel spacings agree within [`SPACING_TOLERANCE`] on every axis.
pub fn same_spacing(a: [f64; 3], b: [f64; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(&x, y)| (x - y).abs() <= SPACING_TOLERANCE * x.abs().max(y.abs()))
}

/// View voxel data as a 3-D volume `[x, y, z]`: a 2-D image becomes one slice and trailing
/// dimensions of size 1 are dropped. `None` when the data is not a volume (1-D, or a real 4th
/// dimension).
pub fn into_volume3(data: ArrayD<f64>) -> Option<ndarray::Array3<f64>> {
    let shape = data.shape().to_vec();
    if shape.len() < 2 || shape.iter().skip(3).any(|&d| d != 1) {
        return None;
    }
    let z = shape.get(2).copied().unwrap_or(1);
    data.into_shape_with_order(((shape[0], shape[1], z), ndarray::Order::ColumnMajor))
        .ok()
}

/// Read a `.nii` or `.nii.gz` file (little- or big-endian, any integer or float datatype).
pub fn read_nifti(path: &Path) -> Result<NiftiVolume> {
    let err = |problem| Error::nifti(path, problem);
    let file = File::open(path).map_err(|e| Error::read(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::read(path, e))?.len();
    if file_len == 0 {
        return Err(err(NiftiProblem::Empty));
    }
    let mut file = BufReader::new(file);
    let gzipped = is_gzip(&mut file).map_err(|e| Error::read(path, e))?;
    let mut reader: Box<dyn Read> = if gzipped {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let io_err = |e: io::Error| stream_error(path, gzipped, e);

    let mut head = vec![0u8; NIFTI1_HEADER_SIZE];
    let got = read_up_to(&mut reader, &mut head).map_err(io_err)?;
    head.truncate(got);
    check_format(&head).map_err(err)?;

    let header = NiftiHeader::from_reader(io::Cursor::new(&head)).map_err(|e| {
        err(NiftiProblem::Header {
            field: "header",
            problem: e.to_string(),
        })
    })?;
    let layout = validate_header(&header).map_err(err)?;

    if !gzipped {
        let available = file_len.saturating_sub(layout.offset);
        if file_len < layout.offset || available < layout.bytes {
            return Err(err(NiftiProblem::TruncatedData {
                expected: layout.bytes,
                got: available,
                offset: layout.offset,
            }));
        }
    }

    // Skip the extensions between the header and the voxels.
    let gap = layout.offset - NIFTI1_HEADER_SIZE as u64;
    let skipped = io::copy(&mut (&mut reader).take(gap), &mut io::sink()).map_err(io_err)?;
    // `read_to_end` grows the buffer as bytes arrive, so a header that lies about the size of a
    // compressed file cannot make us allocate what is not there.
    let mut raw = Vec::new();
    reader
        .take(layout.bytes)
        .read_to_end(&mut raw)
        .map_err(io_err)?;
    if skipped < gap || (raw.len() as u64) < layout.bytes {
        return Err(err(NiftiProblem::TruncatedData {
            expected: layout.bytes,
            got: raw.len() as u64,
            offset: layout.offset,
        }));
    }

    let (mut conversion_header, scaling_ignored) = scaling_header(&header).map_err(err)?;
    // `nifti` sizes the voxel buffer from `bitpix`; the datatype is what defines it (nibabel
    // fixes a wrong `bitpix` the same way).
    let bitpix = (layout.datatype.size_of() * 8) as i16;
    if header.bitpix != bitpix {
        tracing::warn!(
            path = %path.display(),
            bitpix = header.bitpix,
            datatype = datatype_name(layout.datatype),
            "bitpix does not match the datatype: using {bitpix}"
        );
        conversion_header.bitpix = bitpix;
    }
    if scaling_ignored {
        tracing::warn!(
            path = %path.display(),
            scl_slope = header.scl_slope,
            "scl_slope is not finite: reading voxels unscaled (as nibabel does)"
        );
    }
    let data = InMemNiftiVolume::from_raw_data(&conversion_header, raw)
        .and_then(|v| v.into_ndarray::<f64>())
        .map_err(|e| err(NiftiProblem::Volume(e.to_string())))?;

    Ok(NiftiVolume {
        path: path.to_path_buf(),
        header,
        data,
        scaling_ignored,
    })
}

fn is_gzip(file: &mut BufReader<File>) -> io::Result<bool> {
    use io::BufRead;
    let buf = file.fill_buf()?;
    Ok(buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
}

/// Fill `buf` as far as the stream allows; returns how many bytes were read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn stream_error(path: &Path, gzipped: bool, e: io::Error) -> Error {
    let decoding = matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    );
    if gzipped && decoding {
        Error::nifti(path, NiftiProblem::Gzip(e.to_string()))
    } else {
        Error::read(path, e)
    }
}

/// Decide from the first bytes whether this is a NIfTI-1 single file we can read.
fn check_format(head: &[u8]) -> std::result::Result<(), NiftiProblem> {
    if head.is_empty() {
        return Err(NiftiProblem::Empty);
    }
    if head.len() < 4 {
        return Err(NiftiProblem::TruncatedHeader { got: head.len() });
    }
    let size_bytes = [head[0], head[1], head[2], head[3]];
    let sizes = [
        i32::from_le_bytes(size_bytes),
        i32::from_be_bytes(size_bytes),
    ];
    if sizes.contains(&NIFTI2_HEADER_SIZE) {
        return Err(NiftiProblem::Nifti2Unsupported);
    }
    if !sizes.contains(&(NIFTI1_HEADER_SIZE as i32)) {
        return Err(NiftiProblem::NotNifti);
    }
    if head.len() < NIFTI1_HEADER_SIZE {
        return Err(NiftiProblem::TruncatedHeader { got: head.len() });
    }
    match &head[344..348] {
        b"n+1\0" => Ok(()),
        b"ni1\0" => Err(NiftiProblem::HeaderOnly),
        _ => Err(NiftiProblem::AnalyzeUnsupported),
    }
}

/// Where the voxels are and how many bytes they take.
struct DataLayout {
    datatype: NiftiType,
    offset: u64,
    bytes: u64,
}

fn validate_header(h: &NiftiHeader) -> std::result::Result<DataLayout, NiftiProblem> {
    let bad = |field, problem: String| NiftiProblem::Header { field, problem };
    let ndim = h.dim[0] as usize;
    if !(1..=7).contains(&ndim) {
        return Err(bad(
            "dim[0]",
            format!("{} is not a rank in 1..=7", h.dim[0] as i16),
        ));
    }
    let mut voxels: u64 = 1;
    for (i, &d) in h.dim[1..=ndim].iter().enumerate() {
        // `nifti` reads dims as u16; the format stores i16, so show what the file says.
        let signed = d as i16;
        if signed <= 0 {
            return Err(bad(
                "dim",
                format!("dim[{}] = {signed} must be positive", i + 1),
            ));
        }
        // Saturating: seven dims of 32767 overflow u64, and any such claim is refused below.
        voxels = voxels.saturating_mul(signed as u64);
    }
    let datatype = supported_datatype(h.datatype)?;
    if voxels > MAX_VOXELS {
        return Err(bad(
            "dim",
            format!(
                "{:?} claims {voxels} voxels, more than awsnet reads ({MAX_VOXELS})",
                &h.dim[1..=ndim]
            ),
        ));
    }
    let bytes = voxels * datatype.size_of() as u64;
    let offset = h.vox_offset;
    if !offset.is_finite() || offset < 352.0 || offset.fract() != 0.0 {
        return Err(bad(
            "vox_offset",
            format!("{offset} is not a whole number ≥ 352"),
        ));
    }
    Ok(DataLayout {
        datatype,
        offset: offset as u64,
        bytes,
    })
}

/// The datatype behind `code`, if awsnet can read it as real numbers.
fn supported_datatype(code: i16) -> std::result::Result<NiftiType, NiftiProblem> {
    use NiftiType::*;
    let unsupported = |name: &str| NiftiProblem::UnsupportedDatatype {
        code,
        name: name.to_string(),
    };
    let t: NiftiType = num_from_code(code).ok_or_else(|| unsupported("unknown"))?;
    match t {
        Uint8 | Int8 | Uint16 | Int16 | Uint32 | Int32 | Uint64 | Int64 | Float32 | Float64 => {
            Ok(t)
        }
        other => Err(unsupported(datatype_name(other))),
    }
}

fn num_from_code(code: i16) -> Option<NiftiType> {
    use NiftiType::*;
    [
        Uint8, Int16, Int32, Float32, Complex64, Float64, Rgb24, Int8, Uint16, Uint32, Int64,
        Uint64, Float128, Complex128, Complex256, Rgba32,
    ]
    .into_iter()
    .find(|t| *t as i16 == code)
}

/// The conventional lower-case name of a NIfTI datatype (`int16`, `float32`, …).
pub fn datatype_name(t: NiftiType) -> &'static str {
    use NiftiType::*;
    match t {
        Uint8 => "uint8",
        Int8 => "int8",
        Uint16 => "uint16",
        Int16 => "int16",
        Uint32 => "uint32",
        Int32 => "int32",
        Uint64 => "uint64",
        Int64 => "int64",
        Float32 => "float32",
        Float64 => "float64",
        Float128 => "float128",
        Complex64 => "complex64",
        Complex128 => "complex128",
        Complex256 => "complex256",
        Rgb24 => "rgb24",
        Rgba32 => "rgba32",
    }
}

/// The datatype name for a raw header code (`unknown` when the code is not in the standard).
pub fn datatype_code_name(code: i16) -> &'static str {
    num_from_code(code).map(datatype_name).unwrap_or("unknown")
}

/// The header `nifti` should convert with: scaling removed when the slope is unusable.
fn scaling_header(h: &NiftiHeader) -> std::result::Result<(NiftiHeader, bool), NiftiProblem> {
    let mut conv = h.clone();
    if !h.scl_slope.is_finite() {
        conv.scl_slope = 0.0;
        conv.scl_inter = 0.0;
        return Ok((conv, true));
    }
    if h.scl_slope != 0.0 && !h.scl_inter.is_finite() {
        return Err(NiftiProblem::Header {
            field: "scl_inter",
            problem: format!(
                "{} is not finite while scl_slope is {}",
                h.scl_inter, h.scl_slope
            ),
        });
    }
    Ok((conv, false))
}
