//! `awsnet inspect` on every datatype and byte order, and on every kind of broken file.

use crate::common::{awsnet, encode, gzip, json, Hdr};

const VALUES: [f64; 6] = [0.0, 1.0, 2.0, 3.0, 100.0, 7.0];

/// (datatype code, bitpix, name)
const DATATYPES: [(i16, i16, &str); 10] = [
    (2, 8, "uint8"),
    (256, 8, "int8"),
    (4, 16, "int16"),
    (512, 16, "uint16"),
    (8, 32, "int32"),
    (768, 32, "uint32"),
    (1024, 64, "int64"),
    (1280, 64, "uint64"),
    (16, 32, "float32"),
    (64, 64, "float64"),
];

#[test]
fn inspect_reads_every_datatype_in_both_byte_orders_with_scaling() {
    let dir = tempfile::tempdir().unwrap();
    for (code, bitpix, name) in DATATYPES {
        for big_endian in [false, true] {
            for gz in [false, true] {
                let mut h = Hdr::new(&[3, 2, 1], code, bitpix);
                h.big_endian = big_endian;
                // A slope that makes the values fractional: they must not be truncated.
                h.slope = 0.5;
                h.inter = -1.0;
                let mut bytes = h.file(&encode(code, &VALUES, big_endian));
                let file = dir.path().join(format!(
                    "{name}_{}.nii{}",
                    if big_endian { "be" } else { "le" },
                    if gz { ".gz" } else { "" }
                ));
                if gz {
                    bytes = gzip(&bytes);
                }
                std::fs::write(&file, bytes).unwrap();

                let run = awsnet(&["inspect", file.to_str().unwrap()]);
                assert_eq!(run.code, 0, "{name}: {}", run.stderr);
                let v = json(&run.stdout);
                let ctx = format!("{name} be={big_endian} gz={gz}: {v}");
                assert_eq!(v["datatype"], name, "{ctx}");
                assert_eq!(v["shape"], serde_json::json!([3, 2, 1]), "{ctx}");
                assert_eq!(v["spacing"], serde_json::json!([0.75, 0.75, 12.0]), "{ctx}");
                assert_eq!(v["units"]["space"], "mm", "{ctx}");
                assert_eq!(v["endianness"], if big_endian { "big" } else { "little" });
                assert_eq!(v["min"], -1.0, "{ctx}");
                assert_eq!(v["max"], 49.0, "{ctx}");
                let mean = VALUES.iter().map(|x| x * 0.5 - 1.0).sum::<f64>() / 6.0;
                assert!((v["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{ctx}");
                assert_eq!(v["nan_count"], 0);
                assert_eq!(v["sform_code"], 1);
                assert_eq!(
                    v["affine"][0],
                    serde_json::json!([0.75, 0.0, 0.0, -10.0]),
                    "{ctx}"
                );
                assert_eq!(
                    v["affine"][2],
                    serde_json::json!([0.0, 0.0, 12.0, 5.0]),
                    "{ctx}"
                );
                for key in ["path", "scl_slope", "scl_inter", "qform_code"] {
                    assert!(v.get(key).is_some(), "{key} missing: {ctx}");
                }
            }
        }
    }
}

#[test]
fn inspect_counts_nans_and_reports_a_4d_shape() {
    let dir = tempfile::tempdir().unwrap();
    let h = Hdr::new(&[2, 2, 1, 2], 16, 32);
    let values = [1.0, f64::NAN, 3.0, 5.0, f64::NAN, 2.0, 4.0, 0.0];
    let file = dir.path().join("t.nii");
    std::fs::write(&file, h.file(&encode(16, &values, false))).unwrap();
    let v = json(&awsnet(&["inspect", file.to_str().unwrap()]).stdout);
    assert_eq!(v["shape"], serde_json::json!([2, 2, 1, 2]));
    assert_eq!(v["nan_count"], 2);
    assert_eq!(v["min"], 0.0);
    assert_eq!(v["max"], 5.0);
    assert_eq!(v["mean"], 2.5);
}

#[test]
fn a_nan_slope_means_no_scaling_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Hdr::new(&[3, 2, 1], 4, 16);
    h.slope = f32::NAN;
    h.inter = 5.0;
    let file = dir.path().join("nan_slope.nii.gz");
    std::fs::write(&file, gzip(&h.file(&encode(4, &VALUES, false)))).unwrap();
    let run = awsnet(&["inspect", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("scl_slope is not finite"),
        "{}",
        run.stderr
    );
    let v = json(&run.stdout);
    assert_eq!(
        v["scl_slope"],
        serde_json::Value::Null,
        "NaN serialises as null"
    );
    assert_eq!(v["scaling_applied"], false);
    assert_eq!(v["max"], 100.0);
    assert_eq!(v["nan_count"], 0);
}

/// Broken files: each must exit 2 naming the file and the problem, without a panic.
#[test]
fn broken_files_are_clean_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = Hdr::new(&[3, 2, 1], 4, 16).file(&encode(4, &VALUES, false));
    let mut nifti2 = vec![0u8; 540 + 4];
    nifti2[0..4].copy_from_slice(&540i32.to_le_bytes());
    nifti2[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
    let mut analyze = Hdr::new(&[3, 2, 1], 4, 16);
    analyze.magic = [0; 4];
    let mut huge = Hdr::new(&[64, 64, 64], 4, 16);
    huge.vox_offset = 352.0;
    let absurd = Hdr::new(&[30000, 30000, 30000], 64, 64);
    let overflow = Hdr::new(&[32767; 7], 64, 64);
    let mut bad_dim = Hdr::new(&[3, -2, 1], 4, 16);
    bad_dim.vox_offset = 352.0;
    let complex = Hdr::new(&[3, 2, 1], 32, 64);
    let mut bad_inter = Hdr::new(&[3, 2, 1], 4, 16);
    bad_inter.inter = f32::INFINITY;
    let gz_good = gzip(&good);

    let table: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty.nii", vec![], &["the file is empty"]),
        ("empty.nii.gz", gzip(&[]), &["the file is empty"]),
        (
            "text.nii",
            b"hello, I am not an image\n".to_vec(),
            &["not a NIfTI file"],
        ),
        (
            "short.nii",
            good[..100].to_vec(),
            &["truncated header: 100 of 348"],
        ),
        (
            "truncated.nii",
            good[..good.len() - 3].to_vec(),
            &["truncated voxel data", "12 bytes"],
        ),
        (
            "truncated.nii.gz",
            gz_good[..gz_good.len() / 2].to_vec(),
            &["truncated.nii.gz"],
        ),
        (
            "garbage.nii.gz",
            {
                let mut g = gz_good.clone();
                for b in g.iter_mut().skip(12).take(20) {
                    *b ^= 0x5a;
                }
                g
            },
            &["garbage.nii.gz"],
        ),
        ("nifti2.nii", nifti2, &["NIfTI-2 files are not supported"]),
        (
            "analyze.nii",
            analyze.file(&encode(4, &VALUES, false)),
            &["Analyze 7.5 files are not supported"],
        ),
        (
            "claims_more.nii",
            huge.file(&encode(4, &VALUES, false)),
            &["truncated voxel data", "524288 bytes"],
        ),
        (
            "claims_more.nii.gz",
            gzip(&huge.file(&encode(4, &VALUES, false))),
            &["truncated voxel data"],
        ),
        ("absurd.nii", absurd.file(&[]), &["more than awsnet reads"]),
        (
            "overflow.nii",
            overflow.file(&[]),
            &["more than awsnet reads"],
        ),
        (
            "bad_dim.nii",
            bad_dim.file(&encode(4, &VALUES, false)),
            &["dim[2] = -2 must be positive"],
        ),
        (
            "complex.nii",
            complex.file(&[0; 48]),
            &["datatype complex64 (code 32) is not supported"],
        ),
        (
            "bad_inter.nii",
            bad_inter.file(&encode(4, &VALUES, false)),
            &["scl_inter", "not finite"],
        ),
    ];
    for (name, bytes, fragments) in table {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let run = awsnet(&["inspect", file.to_str().unwrap()]);
        let mut expect = fragments.to_vec();
        expect.push(name);
        run.assert_user_error(&expect);
        assert!(
            run.stdout.is_empty(),
            "{name}: no partial output, got {}",
            run.stdout
        );
    }
}

#[test]
fn a_missing_file_and_bad_usage_exit_2() {
    let run = awsnet(&["inspect", "/definitely/not/here.nii.gz"]);
    run.assert_user_error(&["cannot read /definitely/not/here.nii.gz: No such file"]);
    assert_eq!(
        run.stderr.matches("No such file").count(),
        1,
        "said once: {}",
        run.stderr
    );
    let run = awsnet(&["inspect"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = awsnet(&["frobnicate"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
