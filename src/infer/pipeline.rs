//! The four trained networks and the per-slice path through them (see [`super`]).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use ndarray::{Array2, Array3};

use super::components::{components, keep_largest};
use crate::atomic::StagedDir;
use crate::data::cases::{load_case, Case, CaseFiles, Sequence};
use crate::data::labels::Label;
use crate::data::nifti_write::write_labels;
use crate::data::preprocess::{
    normalize_slice, resize_nearest, roi_box, slices, stack_slices, CenterWindow, RoiBox,
    RoiGeometry,
};
use crate::error::{Error, Result};
use crate::model::unet::UNet;
use crate::progress::Progress;
use crate::train::checkpoint::load_checkpoint;
use crate::train::config::TrainConfig;
use crate::train::deploy::{run_deployment, Deploy};
use crate::train::run_dir::{run_checkpoint, Which};
use crate::train::samples::{Located, Network, SampleGeometry};

/// Scar components smaller than this (pixels) are removed by the optional clean-up.
pub const MIN_SCAR_PIXELS: usize = 60;
/// Edema components smaller than this (pixels) are removed by the optional clean-up.
pub const MIN_EDEMA_PIXELS: usize = 200;

/// Choices made at inference, not at training: both off by default, the paper's reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InferOptions {
    /// Keep only the coarse LV mask's largest connected component before its bounding box is
    /// taken (step 2), so a stray false-positive blob cannot stretch the ROI. The paper boxes
    /// the whole coarse mask.
    pub largest_component: bool,
    /// Remove small scar and edema components per slice (step 6).
    pub clean_small: bool,
}

/// One trained network and the geometry and inputs it was trained with.
pub struct Stage<B: Backend> {
    pub model: UNet<B>,
    pub geometry: SampleGeometry,
    pub sequences: Vec<Sequence>,
}

/// The four networks of AWSnet, ready for inference.
pub struct Pipeline<B: Backend> {
    pub coarse: Stage<B>,
    pub fine: Stage<B>,
    pub scar: Stage<B>,
    pub scar_edema: Stage<B>,
}

/// One trained network to load: its train config and the checkpoint to deploy.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub config: TrainConfig,
    pub checkpoint: std::path::PathBuf,
    /// Named in errors (a run directory, a grid task).
    pub source: std::path::PathBuf,
}

/// Load the four runs of `dir` (`casn_coarse/`, `casn_fine/`, `scar/`, `scar_edema/`): the
/// CASNs at their best validation epoch, the ASANs at the checkpoint `deploy` picks.
pub fn load_pipeline<B: AutodiffBackend>(
    dir: &Path,
    deploy: Deploy,
    device: &B::Device,
) -> Result<Pipeline<B::InnerBackend>> {
    let deployed = |name: &str| -> Result<Deployed> {
        let run = dir.join(name);
        if !run.is_dir() {
            return Err(Error::Dataset {
                path: dir.to_path_buf(),
                problem: format!(
                    "no {name}/ run directory; a model directory holds the awsnet train runs \
                     casn_coarse/, casn_fine/, scar/ and scar_edema/"
                ),
            });
        }
        deployed_run(&run, deploy)
    };
    load_deployed::<B>(
        [
            deployed("casn_coarse")?,
            deployed("casn_fine")?,
            deployed("scar")?,
            deployed("scar_edema")?,
        ],
        device,
    )
}

/// The network of the `awsnet train` run directory `run`: a CASN at its best validation epoch,
/// an ASAN at the checkpoint `deploy` picks.
pub fn deployed_run(run: &Path, deploy: Deploy) -> Result<Deployed> {
    let config = TrainConfig::read(&run.join("config.json"))?;
    let checkpoint = if config.is_asan() {
        run_deployment(run, &config, deploy)?
    } else {
        run_checkpoint(run, Which::Best)?
    };
    Ok(Deployed {
        config,
        checkpoint,
        source: run.join("config.json"),
    })
}

/// Load one network for inference, checking it is the `net` its place needs.
pub fn load_stage<B: AutodiffBackend>(
    d: &Deployed,
    net: Network,
    device: &B::Device,
) -> Result<Stage<B::InnerBackend>> {
    if d.config.net != net {
        return Err(Error::input(
            &d.source,
            format!("trains {:?}, but this place needs {net:?}", d.config.net),
        ));
    }
    let checkpoint = load_checkpoint::<B>(&d.checkpoint, &d.config.optimizer, device)?;
    Ok(Stage {
        model: checkpoint.model.valid(),
        geometry: d.config.geometry,
        sequences: d.config.input_sequences(),
    })
}

/// Load four networks (coarse CASN, fine CASN, ASAN-S, ASAN-P), checking each trains the net
/// its place says and that their geometries fit together.
pub fn load_deployed<B: AutodiffBackend>(
    networks: [Deployed; 4],
    device: &B::Device,
) -> Result<Pipeline<B::InnerBackend>> {
    let [coarse, fine, scar, scar_edema] = &networks;
    let pipeline = Pipeline {
        coarse: load_stage::<B>(coarse, Network::CasnCoarse, device)?,
        fine: load_stage::<B>(fine, Network::CasnFine, device)?,
        scar: load_stage::<B>(scar, Network::Scar, device)?,
        scar_edema: load_stage::<B>(scar_edema, Network::ScarEdema, device)?,
    };
    // All four networks work in one centre crop, and inference cuts one ROI for the fine CASN
    // and both ASANs: each must have been trained on inputs cut the same way.
    let (crop, margin) = (pipeline.coarse.geometry.crop, pipeline.fine.geometry.margin);
    for (name, s, check_margin) in [
        ("casn_fine", &pipeline.fine, false),
        ("scar", &pipeline.scar, true),
        ("scar_edema", &pipeline.scar_edema, true),
    ] {
        let problem = if s.geometry.crop != crop {
            format!(
                "geometry.crop {:?} differs from casn_coarse's {crop:?}; all four networks must \
                 share the centre crop",
                s.geometry.crop
            )
        } else if check_margin && s.geometry.margin != margin {
            format!(
                "geometry.margin {} differs from casn_fine's {margin}; the ASANs and the fine \
                 CASN must share the ROI margin",
                s.geometry.margin
            )
        } else {
            continue;
        };
        let source = match name {
            "casn_fine" => &fine.source,
            "scar" => &scar.source,
            _ => &scar_edema.source,
        };
        return Err(Error::input(source, problem));
    }
    Ok(pipeline)
}

/// The class map a network predicts for one input.
fn classes<B: Backend>(
    model: &UNet<B>,
    channels: &[Array2<f32>],
    device: &B::Device,
) -> Array2<u8> {
    let (h, w) = channels[0].dim();
    let data: Vec<f32> = channels.iter().flat_map(|c| c.iter().copied()).collect();
    let x = Tensor::<B, 4>::from_data(TensorData::new(data, [1, channels.len(), h, w]), device);
    let logits = model.forward(x).pop().expect("a prediction head");
    let labels: Vec<i64> = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .expect("integer classes");
    Array2::from_shape_vec((h, w), labels.into_iter().map(|v| v as u8).collect())
        .expect("one class per pixel")
}

/// MyoPS labels for every slice of `case`.
pub fn predict_case<B: Backend>(
    pipeline: &Pipeline<B>,
    case: &Case,
    options: InferOptions,
    device: &B::Device,
) -> Array3<u16> {
    let labels: Vec<Array2<u16>> = zscored_slices(case)
        .iter()
        .map(|norm| predict_slice(pipeline, norm, options, device))
        .collect();
    stack_slices(&labels).expect("at least one slice")
}

/// Segment each case into `out` as `<case>_pred.nii.gz`, with the case's header so it overlays
/// the input: what `awsnet predict` and a grid's predict task both run. The directory appears
/// whole or not at all (`StagedDir`); returns how many cases were written.
pub fn predict_cases<B: Backend>(
    pipeline: &Pipeline<B>,
    cases: &[&CaseFiles],
    options: InferOptions,
    out: &Path,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<usize> {
    progress.set_total(cases.len() as u64);
    // Dropped uncommitted on any error, which removes everything staged so far.
    let mut staged = StagedDir::new(out)?;
    for files in cases {
        let case = load_case(files)?;
        let labels = predict_case(pipeline, &case, options, device);
        let name = format!("{}_pred.nii.gz", case.id);
        write_labels(&staged.file(&name), &labels, &case.header)?;
        progress.advance(1);
    }
    Ok(staged.commit()?.len())
}

/// Per slice of `case`, its C0, DE and T2 each z-scored over the slice: what the networks read.
pub fn zscored_slices(case: &Case) -> Vec<Vec<Array2<f32>>> {
    let sequences: Vec<Vec<Array2<f32>>> = Sequence::ALL
        .iter()
        .map(|&s| slices(case.image(s)))
        .collect();
    (0..sequences[0].len())
        .map(|z| {
            sequences
                .iter()
                .map(|s| normalize_slice(s[z].view()))
                .collect()
        })
        .collect()
}

/// Labels of one slice from its z-scored C0, DE and T2.
fn predict_slice<B: Backend>(
    p: &Pipeline<B>,
    norm: &[Array2<f32>],
    options: InferOptions,
    device: &B::Device,
) -> Array2<u16> {
    let (h, w) = norm[0].dim();
    let Some(located) = locate(&p.coarse, &p.fine, norm, options.largest_component, device) else {
        return Array2::zeros((h, w));
    };
    let asan = |stage: &Stage<B>| -> Array2<u8> {
        let input = stage.geometry.input;
        let which: Vec<_> = stage
            .sequences
            .iter()
            .map(|&s| norm[s as usize].view())
            .collect();
        let channels = located.candidate(&which, input);
        located
            .geometry(input)
            .restore(classes(&stage.model, &channels, device).view())
    };
    let s = asan(&p.scar);
    let pe = asan(&p.scar_edema);
    let region = located
        .geometry(p.fine.geometry.input)
        .restore(located.mask.view());
    merge(&region, &s, &pe, options.clean_small)
}

/// Steps 1–3 for one slice from its z-scored C0, DE and T2: the coarse CASN's mask boxes the
/// ROI in the centre crop, the fine CASN segments the LV region there (the mask at its input
/// size); `None` when the coarse CASN finds no LV.
pub fn locate<B: Backend>(
    coarse: &Stage<B>,
    fine: &Stage<B>,
    norm: &[Array2<f32>],
    largest_component: bool,
    device: &B::Device,
) -> Option<Located> {
    let (h, w) = norm[0].dim();
    let crop = coarse.geometry.crop;
    let window = CenterWindow::new([h, w], crop);
    let inputs =
        |g: &RoiGeometry| -> Vec<Array2<f32>> { norm.iter().map(|n| g.image(n.view())).collect() };
    let whole = RoiGeometry {
        window,
        roi: RoiBox {
            x0: 0,
            x1: crop[0],
            y0: 0,
            y1: crop[1],
        },
        input: coarse.geometry.input,
    };
    let coarse_mask = classes(&coarse.model, &inputs(&whole), device);
    let coarse_in_crop = resize_nearest(coarse_mask.view(), crop);
    let roi = coarse_roi(&coarse_in_crop, fine.geometry.margin, largest_component)?;
    let fine_geo = RoiGeometry {
        window,
        roi,
        input: fine.geometry.input,
    };
    let mask = classes(&fine.model, &inputs(&fine_geo), device);
    Some(Located { window, roi, mask })
}

/// The ROI of step 2: the box around the coarse LV mask (in the centre crop) or, with
/// `largest_component`, around its largest connected component, plus `margin`, squared.
fn coarse_roi(coarse: &Array2<u8>, margin: usize, largest_component: bool) -> Option<RoiBox> {
    let boxed = if largest_component {
        roi_box(keep_largest(coarse).view(), margin)
    } else {
        roi_box(coarse.view(), margin)
    };
    let (h, w) = coarse.dim();
    boxed.map(|roi| roi.squared([h, w]))
}

/// Combine the LV region and the two ASANs' classes (0 background, 1 myocardium, 2 pathology)
/// into MyoPS codes, as the module documentation says.
pub fn merge(
    region: &Array2<u8>,
    scar: &Array2<u8>,
    scar_edema: &Array2<u8>,
    clean_small: bool,
) -> Array2<u16> {
    let code_at = |r: u8, s: u8, p: u8| -> u16 {
        if r == 0 {
            Label::Background.code()
        } else if s == 2 {
            Label::Scar.code()
        } else if p == 2 {
            Label::Edema.code()
        } else if s == 1 || p == 1 {
            Label::Myocardium.code()
        } else {
            Label::LvBlood.code()
        }
    };
    let mut out =
        Array2::from_shape_fn(region.dim(), |i| code_at(region[i], scar[i], scar_edema[i]));
    if clean_small {
        for pixels in components(&out.mapv(|c| c == Label::Scar.code())) {
            if pixels.len() < MIN_SCAR_PIXELS {
                for &i in &pixels {
                    out[i] = if scar_edema[i] == 2 {
                        Label::Edema.code()
                    } else {
                        Label::Myocardium.code()
                    };
                }
            }
        }
        for pixels in components(&out.mapv(|c| c == Label::Edema.code())) {
            if pixels.len() < MIN_EDEMA_PIXELS {
                for &i in &pixels {
                    out[i] = Label::Myocardium.code();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn merge_follows_the_rules() {
        let region = array![[0u8, 1, 1, 1, 1, 1]];
        let scar = array![[2u8, 2, 0, 1, 0, 1]];
        let path = array![[2u8, 0, 2, 0, 0, 2]];
        let got = merge(&region, &scar, &path, false);
        // Outside the region nothing; S scar wins; P pathology is edema; S or P myocardium;
        // the rest of the region is blood pool.
        assert_eq!(got, array![[0u16, 2221, 1220, 200, 500, 1220]]);
    }

    #[test]
    fn largest_component_keeps_a_stray_blob_out_of_the_roi() {
        let mut coarse = Array2::zeros((64, 64));
        coarse.slice_mut(ndarray::s![20..36, 24..40]).fill(1u8);
        let lv_only = coarse.clone();
        coarse.slice_mut(ndarray::s![55..58, 2..5]).fill(1u8);
        let (paper, largest) = (false, true);
        let around_lv = coarse_roi(&lv_only, 4, paper).unwrap();
        assert_eq!(around_lv.size(), [24, 24]);
        // The paper's box stretches to the blob; the option's box is the LV's alone.
        assert!(coarse_roi(&coarse, 4, paper).unwrap().size()[0] > 40);
        assert_eq!(coarse_roi(&coarse, 4, largest), Some(around_lv));
        // Without a blob the option changes nothing.
        assert_eq!(coarse_roi(&lv_only, 4, largest), Some(around_lv));
        assert_eq!(coarse_roi(&Array2::zeros((8, 8)), 4, largest), None);
    }

    #[test]
    fn small_components_are_cleaned_when_asked() {
        let region = Array2::from_elem((20, 20), 1u8);
        let mut scar = Array2::from_elem((20, 20), 1u8);
        let mut path = Array2::from_elem((20, 20), 1u8);
        // A 2×2 scar (too small) on pathology, and a 3×3 edema-only patch (too small).
        for i in 0..2 {
            for j in 0..2 {
                scar[[i, j]] = 2;
                path[[i, j]] = 2;
            }
        }
        for i in 10..13 {
            for j in 10..13 {
                path[[i, j]] = 2;
            }
        }
        let kept = merge(&region, &scar, &path, false);
        assert_eq!(kept.iter().filter(|&&c| c == 2221).count(), 4);
        let cleaned = merge(&region, &scar, &path, true);
        // The small scar became edema, then joined no big edema and became myocardium.
        assert!(cleaned.iter().all(|&c| c == 200), "{cleaned:?}");
    }
}
