//! Shared test helpers: hand-built NIfTI files and a runner for the `awsnet` binary.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A NIfTI-1 header to build by hand, so tests control every byte.
#[derive(Clone)]
pub struct Hdr {
    pub dims: Vec<i16>,
    pub datatype: i16,
    pub bitpix: i16,
    pub pixdim: [f32; 8],
    pub slope: f32,
    pub inter: f32,
    pub big_endian: bool,
    pub magic: [u8; 4],
    pub sizeof_hdr: i32,
    pub vox_offset: f32,
}

impl Hdr {
    pub fn new(dims: &[i16], datatype: i16, bitpix: i16) -> Self {
        Hdr {
            dims: dims.to_vec(),
            datatype,
            bitpix,
            pixdim: [1.0, 0.75, 0.75, 12.0, 1.0, 1.0, 1.0, 1.0],
            slope: 1.0,
            inter: 0.0,
            big_endian: false,
            magic: *b"n+1\0",
            sizeof_hdr: 348,
            vox_offset: 352.0,
        }
    }

    /// The 352 bytes before the voxels: header plus an empty extension block.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 352];
        let be = self.big_endian;
        let i32b = |v: i32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let i16b = |v: i16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let f32b = |v: f32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        b[0..4].copy_from_slice(&i32b(self.sizeof_hdr));
        let mut dim = [1i16; 8];
        dim[0] = self.dims.len() as i16;
        for (i, d) in self.dims.iter().enumerate() {
            dim[i + 1] = *d;
        }
        for (i, d) in dim.iter().enumerate() {
            b[40 + 2 * i..42 + 2 * i].copy_from_slice(&i16b(*d));
        }
        b[70..72].copy_from_slice(&i16b(self.datatype));
        b[72..74].copy_from_slice(&i16b(self.bitpix));
        for (i, p) in self.pixdim.iter().enumerate() {
            b[76 + 4 * i..80 + 4 * i].copy_from_slice(&f32b(*p));
        }
        b[108..112].copy_from_slice(&f32b(self.vox_offset));
        b[112..116].copy_from_slice(&f32b(self.slope));
        b[116..120].copy_from_slice(&f32b(self.inter));
        b[123] = 2 | 8;
        b[252..254].copy_from_slice(&i16b(0)); // qform_code
        b[254..256].copy_from_slice(&i16b(1)); // sform_code
        let srows = [
            [self.pixdim[1], 0.0, 0.0, -10.0],
            [0.0, self.pixdim[2], 0.0, 20.0],
            [0.0, 0.0, self.pixdim[3], 5.0],
        ];
        for (r, row) in srows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let o = 280 + 16 * r + 4 * c;
                b[o..o + 4].copy_from_slice(&f32b(*v));
            }
        }
        b[344..348].copy_from_slice(&self.magic);
        b
    }

    /// Header followed by `data` (already encoded in the header's byte order).
    pub fn file(&self, data: &[u8]) -> Vec<u8> {
        let mut b = self.bytes();
        b.extend_from_slice(data);
        b
    }
}

/// Encode values of a datatype code in the given byte order.
pub fn encode(datatype: i16, values: &[f64], big_endian: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        macro_rules! push {
            ($t:ty) => {{
                let x = v as $t;
                out.extend_from_slice(&if big_endian {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                });
            }};
        }
        match datatype {
            2 => push!(u8),
            256 => push!(i8),
            4 => push!(i16),
            512 => push!(u16),
            8 => push!(i32),
            768 => push!(u32),
            1024 => push!(i64),
            1280 => push!(u64),
            16 => push!(f32),
            64 => push!(f64),
            other => panic!("test helper: datatype {other}"),
        }
    }
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The result of one `awsnet` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Assert a clean user error: exit 2, the given fragments in stderr, no panic trace.
    pub fn assert_user_error(&self, fragments: &[&str]) {
        assert_eq!(
            self.code, 2,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        for f in fragments {
            assert!(
                self.stderr.contains(f),
                "missing {f:?} in stderr: {}",
                self.stderr
            );
        }
    }
}

impl Run {
    /// Assert that stdout holds every fragment, showing it whole when one is missing.
    pub fn assert_stdout_has(&self, fragments: &[&str]) {
        for f in fragments {
            assert!(
                self.stdout.contains(f),
                "missing {f:?} in stdout: {}",
                self.stdout
            );
        }
    }
}

pub fn awsnet(args: &[&str]) -> Run {
    awsnet_in(args, None)
}

pub fn awsnet_in(args: &[&str], cwd: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_awsnet"));
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd.output().expect("run awsnet");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Three 64×64 phantom cases (3.6 mm pixels, 2–3 slices) in `dir`: small enough to train on in
/// a test.
pub fn small_phantoms(dir: &Path, seed: u64) {
    phantoms(dir, 3, seed);
}

/// `cases` 64×64 phantom cases (3.6 mm pixels, 2–3 slices) in `dir`.
pub fn phantoms(dir: &Path, cases: usize, seed: u64) {
    let (seed, cases) = (seed.to_string(), cases.to_string());
    let run = awsnet(&[
        "phantom",
        "--out",
        dir.to_str().unwrap(),
        "--cases",
        &cases,
        "--size",
        "64",
        "64",
        "--spacing",
        "3.6",
        "3.6",
        "14",
        "--slices",
        "2",
        "3",
        "--seed",
        &seed,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
