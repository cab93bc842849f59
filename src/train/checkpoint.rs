//! Checkpoints: a network, its Adam state and the training state, written so that the same run
//! gives the same bytes and a damaged or mismatched checkpoint is refused by name.
//!
//! burn's own records key every parameter by a `ParamId` drawn from the operating system's
//! random source when a model is built, so two identical runs would write different bytes and a
//! checksum could not tell "same model" from "other model". A checkpoint here therefore holds the
//! tensors in the module's visiting order, with their paths and shapes:
//!
//! - `model.bin`: every float tensor (parameters and BatchNorm running statistics), f32
//!   little-endian, concatenated in visiting order;
//! - `optimizer.bin`: Adam's state per parameter in the same order (MessagePack of burn's record
//!   items), `None` for parameters Adam has not seen;
//! - `checkpoint.json`: the network config, the tensor table (path, shape), and the training
//!   state (epoch, seed, α, anything the caller adds);
//! - `manifest.json`: the sha256 of the three files above.
//!
//! Files are staged, fsynced and renamed into the directory with the manifest last; callers
//! name a checkpoint only once it is complete (see `train::run`'s pointers). Loading verifies
//! every hash, then rebuilds the model from its config, checks the tensor table against it and maps the
//! tensors in; the Adam state is re-keyed to the new model's parameter ids. Continuing from a
//! checkpoint therefore trains exactly as if the run had never stopped.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{Adam, Optimizer};
use burn::record::{FullPrecisionSettings, Record};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::StagedDir;
use crate::das::weighting::WeightingState;
use crate::error::{Error, Result};
use crate::model::unet::{UNet, UNetConfig};
use crate::train::config::OptimizerSettings;

/// The optimiser a checkpoint holds.
pub type AdamOf<B> = OptimizerAdaptor<Adam, UNet<B>, B>;

const MODEL: &str = "model.bin";
const OPTIMIZER: &str = "optimizer.bin";
const STATE: &str = "checkpoint.json";
const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

/// Where training stands, beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: u64,
    /// The run's seed; every epoch's randomness derives from it and the epoch.
    pub seed: u64,
    /// Deep-supervision weights in use.
    pub alpha: Vec<f64>,
    /// The weighting's state (β, controller, population…), for runs with a `weighting`.
    #[serde(default)]
    pub extra: Option<StateExtra>,
}

/// What a checkpoint keeps beyond the epoch, seed and α.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateExtra {
    pub weighting: WeightingState,
}

impl TrainState {
    /// The weighting's state, if the run has a `weighting`.
    pub fn weighting(&self) -> Option<&WeightingState> {
        self.extra.as_ref().map(|e| &e.weighting)
    }

    /// Where training stands one epoch later, trained with `alpha`: a DAS child keeps its
    /// parent's search state (`self.extra`), the update that chooses it moves the search on.
    pub fn after_epoch(&self, alpha: Vec<f64>, weighting: Option<WeightingState>) -> TrainState {
        TrainState {
            epoch: self.epoch + 1,
            seed: self.seed,
            alpha,
            extra: match weighting {
                Some(weighting) => Some(StateExtra { weighting }),
                None => self.extra.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TensorEntry {
    path: String,
    shape: Vec<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    format: u32,
    config: UNetConfig,
    tensors: Vec<TensorEntry>,
    state: TrainState,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    sha256: BTreeMap<String, String>,
}

/// Collects float tensors, their paths and parameter ids in visiting order.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    entries: Vec<TensorEntry>,
    ids: Vec<ParamId>,
    data: Vec<u8>,
}

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        self.entries.push(TensorEntry {
            path: self.path.join("."),
            shape: tensor.dims().to_vec(),
        });
        self.ids.push(param.id);
        let values = tensor
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("float tensors convert to f32");
        for v in values {
            self.data.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Replaces float tensors, in visiting order, with those of a checkpoint.
struct Restore<'a, B: Backend> {
    tensors: Vec<(&'a TensorEntry, &'a [u8])>,
    next: usize,
    device: B::Device,
}

impl<B: Backend> ModuleMapper<B> for Restore<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let (entry, bytes) = self.tensors[self.next];
        self.next += 1;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let restored =
            Tensor::<B, D>::from_data(TensorData::new(values, entry.shape.clone()), &self.device)
                .set_require_grad(tensor.is_require_grad());
        Param::from_mapped_value(id, restored, mapper)
    }
}

fn collect<B: Backend, M: Module<B>>(module: &M) -> Collect {
    // BatchNorm keeps running statistics per thread until a record is taken; visiting alone
    // would read stale values. Taking a record of a clone syncs the shared state.
    let _ = module.clone().into_record();
    let mut c = Collect::default();
    module.visit(&mut c);
    c
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Write a checkpoint of `model` and `optimizer` to `dir` (created; replaced if it exists).
pub fn save_checkpoint<B: AutodiffBackend>(
    dir: &Path,
    config: &UNetConfig,
    model: &UNet<B>,
    optimizer: &AdamOf<B>,
    state: &TrainState,
) -> Result<()> {
    let tensors = collect::<B, _>(model);
    let mut adam = optimizer.to_record();
    let per_param: Vec<Option<_>> = tensors
        .ids
        .iter()
        .map(|id| {
            adam.remove(id)
                .map(|r: AdaptorRecord<Adam, B>| r.into_item::<FullPrecisionSettings>())
        })
        .collect();
    let optimizer_bytes = rmp_serde::to_vec_named(&per_param)
        .map_err(|e| Error::Internal(format!("encoding the optimizer state: {e}")))?;
    let file = CheckpointFile {
        format: FORMAT,
        config: config.clone(),
        tensors: tensors.entries,
        state: state.clone(),
    };
    let mut state_bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::Internal(format!("encoding the checkpoint state: {e}")))?;
    state_bytes.push(b'\n');
    let files: [(&str, &[u8]); 3] = [
        (MODEL, &tensors.data),
        (OPTIMIZER, &optimizer_bytes),
        (STATE, &state_bytes),
    ];
    let manifest = Manifest {
        sha256: files
            .iter()
            .map(|(name, bytes)| (name.to_string(), sha256_hex(bytes)))
            .collect(),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Internal(format!("encoding the manifest: {e}")))?;
    manifest_bytes.push(b'\n');

    let mut staged = StagedDir::new(dir)?;
    for (name, bytes) in files
        .into_iter()
        .chain([(MANIFEST, manifest_bytes.as_slice())])
    {
        let path = staged.file(name);
        std::fs::write(&path, bytes).map_err(|e| Error::write(dir.join(name), e))?;
    }
    staged.commit()?;
    Ok(())
}

/// The training state of the checkpoint in `dir` (hashes verified), without building its model:
/// what a reducer needs to continue a search.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    Ok(read_verified(dir)?.0.state)
}

/// The checkpoint's description and file contents, each file checked against the manifest.
fn read_verified(dir: &Path) -> Result<(CheckpointFile, BTreeMap<&'static str, Vec<u8>>)> {
    let bad = |problem: String| Error::Input {
        path: dir.to_path_buf(),
        problem,
    };
    let read =
        |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::read(dir.join(name), e));
    let manifest: Manifest = serde_json::from_slice(&read(MANIFEST)?)
        .map_err(|e| bad(format!("{MANIFEST} is not a checkpoint manifest: {e}")))?;
    let mut contents = BTreeMap::new();
    for name in [MODEL, OPTIMIZER, STATE] {
        let bytes = read(name)?;
        let want = manifest
            .sha256
            .get(name)
            .ok_or_else(|| bad(format!("{MANIFEST} lists no hash for {name}")))?;
        let got = sha256_hex(&bytes);
        if &got != want {
            return Err(bad(format!(
                "{name} is damaged or was replaced: sha256 {got}, the manifest says {want}"
            )));
        }
        contents.insert(name, bytes);
    }
    let file: CheckpointFile =
        serde_json::from_slice(&contents[STATE]).map_err(|e| bad(format!("{STATE}: {e}")))?;
    if file.format != FORMAT {
        return Err(bad(format!(
            "checkpoint format {} is not the one this awsnet reads ({FORMAT})",
            file.format
        )));
    }

    Ok((file, contents))
}

/// A loaded checkpoint.
pub struct Checkpoint<B: AutodiffBackend> {
    pub config: UNetConfig,
    pub model: UNet<B>,
    pub optimizer: AdamOf<B>,
    pub state: TrainState,
}

/// A fresh Adam with `settings` (lr is given per step).
pub fn new_adam<B: AutodiffBackend>(settings: &OptimizerSettings) -> AdamOf<B> {
    burn::optim::AdamConfig::new()
        .with_epsilon(settings.epsilon as f32)
        .init()
}

/// Read and verify the checkpoint in `dir`, rebuilding model and optimiser (with `optimizer`'s
/// settings, which the Adam state does not record) on `device`.
pub fn load_checkpoint<B: AutodiffBackend>(
    dir: &Path,
    optimizer: &OptimizerSettings,
    device: &B::Device,
) -> Result<Checkpoint<B>> {
    let (file, contents) = read_verified(dir)?;
    let bad = |problem: String| Error::Input {
        path: dir.to_path_buf(),
        problem,
    };

    // Built under the seeded-init lock: its throw-away initial weights must not interleave with
    // another model's seeded draws in this process.
    let model: UNet<B> = file.config.init_seeded(0, device);
    let layout = collect::<B, _>(&model);
    if layout.entries != file.tensors {
        let first = layout
            .entries
            .iter()
            .zip(&file.tensors)
            .find(|(a, b)| a != b)
            .map_or_else(
                || {
                    format!(
                        "{} tensors in the model, {} in the checkpoint",
                        layout.entries.len(),
                        file.tensors.len()
                    )
                },
                |(a, b)| {
                    format!(
                        "the model has {} {:?}, the checkpoint {} {:?}",
                        a.path, a.shape, b.path, b.shape
                    )
                },
            );
        return Err(bad(format!(
            "tensors do not match the saved config: {first}"
        )));
    }
    let model_bytes = &contents[MODEL];
    let total: usize = file
        .tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    if model_bytes.len() != 4 * total {
        return Err(bad(format!(
            "{MODEL} holds {} bytes, the tensor table needs {}",
            model_bytes.len(),
            4 * total
        )));
    }
    let mut offset = 0;
    let mut tensors = Vec::with_capacity(file.tensors.len());
    for entry in &file.tensors {
        let len = 4 * entry.shape.iter().product::<usize>();
        tensors.push((entry, &model_bytes[offset..offset + len]));
        offset += len;
    }
    let model = model.map(&mut Restore::<B> {
        tensors,
        next: 0,
        device: device.clone(),
    });

    type Item<B> = <AdaptorRecord<Adam, B> as Record<B>>::Item<FullPrecisionSettings>;
    let per_param: Vec<Option<Item<B>>> = rmp_serde::from_slice(&contents[OPTIMIZER])
        .map_err(|e| bad(format!("{OPTIMIZER}: {e}")))?;
    if per_param.len() != layout.ids.len() {
        return Err(bad(format!(
            "{OPTIMIZER} holds state for {} tensors, the model has {}",
            per_param.len(),
            layout.ids.len()
        )));
    }
    let optimizer: AdamOf<B> = new_adam::<B>(optimizer);
    let mut record = optimizer.to_record();
    for (id, item) in layout.ids.iter().zip(per_param) {
        if let Some(item) = item {
            record.insert(*id, AdaptorRecord::from_item(item, device));
        }
    }
    Ok(Checkpoint {
        config: file.config,
        model,
        optimizer: optimizer.load_record(record),
        state: file.state,
    })
}

/// An independent copy of `parent` for one RL sample: its own parameters and BatchNorm running
/// statistics (a burn `clone()` shares the latter, so training one child would move the others).
/// The child keeps the parent's parameter ids, so each child needs its own optimizer (a clone
/// of the parent's, or one loaded from its checkpoint), never one shared with a sibling.
pub fn fork<B: AutodiffBackend>(
    parent: &UNet<B>,
    config: &UNetConfig,
    device: &B::Device,
) -> UNet<B> {
    // Built under the seeded-init lock, like a loaded checkpoint: the throw-away initial
    // weights are drawn from burn's process-wide stream, and drawn unlocked they would
    // interleave with a seeded build on another thread (seen as a flaky byte-identity test).
    config
        .init_seeded::<B>(0, device)
        .load_record(parent.clone().into_record())
}

/// The model's tensors as a checkpoint would store them: for comparing models bit for bit.
pub fn model_bytes<B: Backend>(model: &UNet<B>) -> Vec<u8> {
    collect::<B, _>(model).data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::AugmentConfig;
    use crate::model::asan::asan_config;
    use crate::train::epoch::{train_epoch, EpochSettings};
    use crate::train::loss::LossConfig;
    use crate::train::samples::Sample;
    use burn::backend::{Autodiff, Flex};
    use ndarray::Array2;

    type B = Autodiff<Flex>;

    fn samples() -> Vec<Sample> {
        (0..6)
            .map(|i| Sample {
                case: format!("c{i}"),
                slice: 0,
                channels: (0..2)
                    .map(|c| {
                        Array2::from_shape_fn((32, 32), |(y, x)| {
                            ((x * 7 + y * 3 + i + c) % 11) as f32 / 11.0
                        })
                    })
                    .collect(),
                classes: Array2::from_shape_fn((32, 32), |(y, x)| ((x / 8 + y / 8 + i) % 3) as u8),
            })
            .collect()
    }

    fn settings(epoch: u64) -> EpochSettings {
        EpochSettings {
            batches: crate::train::batches::BatchSettings {
                batch_size: 4,
                length: crate::train::batches::EpochLength::Pass,
                foreground_fraction: 0.0,
            },
            foreground_class: 2,
            learning_rate: 1e-3,
            alpha: vec![0.1, 0.2, 0.3, 0.4],
            loss: LossConfig::new(),
            augment: AugmentConfig::default(),
            seed: crate::seed::derive(9, "epoch", epoch),
        }
    }

    fn fresh(config: &UNetConfig) -> (UNet<B>, AdamOf<B>) {
        let device = Default::default();
        (
            config.init_seeded(42, &device),
            new_adam::<B>(&OptimizerSettings::default()),
        )
    }

    fn run_epoch(model: UNet<B>, opt: &mut AdamOf<B>, epoch: u64) -> UNet<B> {
        let bar = crate::progress::Silent;
        train_epoch(
            model,
            opt,
            &samples(),
            &settings(epoch),
            &Default::default(),
            &bar,
        )
        .0
    }

    fn state(epoch: u64) -> TrainState {
        TrainState {
            epoch,
            seed: 9,
            alpha: vec![0.1, 0.2, 0.3, 0.4],
            extra: None,
        }
    }

    fn files(dir: &Path) -> Vec<Vec<u8>> {
        [MODEL, OPTIMIZER, STATE, MANIFEST]
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_and_resuming_equals_never_stopping() {
        let tmp = tempfile::tempdir().unwrap();
        let config = asan_config(4, true, true);

        // Never stopping: two epochs in one go, twice.
        let mut straight = Vec::new();
        for run in 0..2 {
            let (model, mut opt) = fresh(&config);
            let model = run_epoch(model, &mut opt, 0);
            let dir = tmp.path().join(format!("after1-{run}"));
            save_checkpoint(&dir, &config, &model, &opt, &state(1)).unwrap();
            let model = run_epoch(model, &mut opt, 1);
            straight.push(model_bytes(&model));
        }
        assert_eq!(
            files(&tmp.path().join("after1-0")),
            files(&tmp.path().join("after1-1")),
            "same seed, different checkpoint bytes"
        );
        assert_eq!(straight[0], straight[1]);

        // Stopping after epoch 1 and resuming from the checkpoint.
        let resumed = load_checkpoint::<B>(
            &tmp.path().join("after1-0"),
            &Default::default(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(resumed.state, state(1));
        assert_eq!(resumed.config, config);
        let mut opt = resumed.optimizer;
        let model = run_epoch(resumed.model, &mut opt, 1);
        assert!(
            model_bytes(&model) == straight[0],
            "resumed training diverged"
        );
    }

    #[test]
    fn damaged_or_mismatched_checkpoints_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let config = asan_config(4, false, true);
        let (model, opt) = fresh(&config);
        let dir = tmp.path().join("ck");
        save_checkpoint(&dir, &config, &model, &opt, &state(0)).unwrap();
        assert!(load_checkpoint::<B>(&dir, &Default::default(), &Default::default()).is_ok());

        let good = std::fs::read(dir.join(MODEL)).unwrap();
        let mut bytes = good.clone();
        bytes[10] ^= 1;
        std::fs::write(dir.join(MODEL), &bytes).unwrap();
        let err = load_checkpoint::<B>(&dir, &Default::default(), &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("model.bin is damaged"), "{err}");
        std::fs::write(dir.join(MODEL), &good).unwrap();

        std::fs::remove_file(dir.join(OPTIMIZER)).unwrap();
        let err = load_checkpoint::<B>(&dir, &Default::default(), &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("optimizer.bin"), "{err}");
    }

    #[test]
    fn forked_children_do_not_share_state_with_the_parent() {
        let device = Default::default();
        let config = asan_config(4, true, true);
        let (parent, _) = fresh(&config);
        let parent = run_epoch(parent, &mut new_adam::<B>(&OptimizerSettings::default()), 0);
        let before = model_bytes(&parent);
        let child = fork(&parent, &config, &device);
        assert!(model_bytes(&child) == before, "the child is not a copy");
        let child = run_epoch(child, &mut new_adam::<B>(&OptimizerSettings::default()), 1);
        assert_ne!(model_bytes(&child), before);
        assert!(
            model_bytes(&parent) == before,
            "training a child changed its parent"
        );
    }
}
