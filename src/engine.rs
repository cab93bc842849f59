//! The model stack behind the grid's [`Engine`]: training runs, DAS children and inference on
//! one of burn's backends. The grid plans and records; this is where its tasks touch tensors.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use crate::das::weighting::Candidate;
use crate::data::cases::discover;
use crate::error::{Error, Result};
use crate::grid::engine::Engine;
use crate::grid::records::{ChildResult, ComputeRecord};
use crate::infer::casn_rois::casn_locator;
use crate::infer::pipeline::{load_deployed, predict_cases, Deployed, InferOptions};
use crate::kernels::conv3x3::Kernel;
use crate::model::unet::UNet;
use crate::progress::Silent;
use crate::stop::Stop;
use crate::train::checkpoint::{load_checkpoint, save_checkpoint, AdamOf, TrainState};
use crate::train::config::TrainConfig;
use crate::train::run::train_run;
use crate::train::run_dir::{RunDir, Which};
use crate::train::samples::Sample;
use crate::train::steps::{self, Session, Trainee};

/// Grid tasks on backend `B`.
pub struct BurnEngine<'a, B: AutodiffBackend> {
    device: B::Device,
    /// Checked between the epochs of a training task.
    stop: &'a dyn Stop,
    /// The samples of the last few configs a DAS child was trained with: a held worker trains
    /// the same config every epoch, and reads and preprocesses its cases once.
    samples: RefCell<Vec<(TrainConfig, Rc<SampleSets>)>>,
    /// The last child this engine trained, as saved: when it becomes the next epoch's parent
    /// (a held worker's own child was chosen), training goes on from memory instead of reading
    /// the checkpoint back. Its values are the checkpoint's, so the bytes do not change.
    last_child: RefCell<Option<LastChild<B>>>,
}

struct LastChild<B: AutodiffBackend> {
    checkpoint: PathBuf,
    model: UNet<B>,
    optimizer: AdamOf<B>,
}

type SampleSets = (Vec<Sample>, Vec<Sample>);

/// How many configs' samples a worker keeps (its own, and the few it may train for others).
const KEPT_SAMPLES: usize = 4;

impl<'a, B: AutodiffBackend> BurnEngine<'a, B> {
    pub fn new(device: B::Device, stop: &'a dyn Stop) -> Self {
        BurnEngine {
            device,
            stop,
            samples: RefCell::new(Vec::new()),
            last_child: RefCell::new(None),
        }
    }

    fn samples_of(&self, config: &TrainConfig) -> Result<Rc<SampleSets>> {
        if let Some((_, sets)) = self.samples.borrow().iter().find(|(c, _)| c == config) {
            return Ok(sets.clone());
        }
        let sets = Rc::new(Session::<B>::samples(
            config,
            &self.device,
            casn_locator::<B>,
        )?);
        let mut kept = self.samples.borrow_mut();
        kept.insert(0, (config.clone(), sets.clone()));
        kept.truncate(KEPT_SAMPLES);
        Ok(sets)
    }
}

impl<B: AutodiffBackend> Engine for BurnEngine<'_, B> {
    fn compute(&self) -> ComputeRecord {
        let backend = B::name(&self.device);
        // flex is the CPU backend; the only other one built is CUDA.
        let on_cpu = backend.contains("flex");
        ComputeRecord {
            device: if on_cpu { "cpu" } else { "cuda" }.to_string(),
            cpu_kernels: on_cpu.then(|| Kernel::on_this_cpu().to_string()),
            backend,
        }
    }

    fn train(&self, config: &TrainConfig, run: &Path) -> Result<()> {
        let resume = RunDir::new(run).checkpoint(Which::Latest)?.is_some();
        train_run::<B>(
            config,
            run,
            resume,
            &self.device,
            casn_locator::<B>,
            &Silent,
            self.stop,
        )
        .map(|_| ())
    }

    fn sample(
        &self,
        config: &TrainConfig,
        parent: &Path,
        state: &TrainState,
        candidate: &Candidate,
        out: &Path,
    ) -> Result<Option<ChildResult>> {
        let sets = self.samples_of(config)?;
        let session =
            Session::<B>::with_samples(config, &self.device, sets.0.clone(), sets.1.clone());
        let kept = self
            .last_child
            .borrow_mut()
            .take()
            .filter(|last| same_checkpoint(&last.checkpoint, parent));
        let (model, optimizer) = match kept {
            Some(last) => (last.model, last.optimizer),
            None => {
                let checkpoint = load_checkpoint::<B>(parent, &config.optimizer, &self.device)?;
                (checkpoint.model, checkpoint.optimizer)
            }
        };
        let trainee = Trainee {
            model,
            optimizer,
            state: state.clone(),
        };
        let started = Instant::now();
        let Some(child) = steps::sample(&session, &trainee, candidate, &Silent) else {
            return Ok(None);
        };
        // The child carries its parent's search state: the update, not the child, moves it.
        let child_state = state.after_epoch(candidate.alpha.to_vec(), None);
        if out.exists() {
            // Left by an attempt that died: the rerun writes the same bytes anew.
            std::fs::remove_dir_all(out).map_err(|e| Error::write(out, e))?;
        }
        save_checkpoint(
            out,
            &session.model_config,
            &child.model,
            &child.optimizer,
            &child_state,
        )?;
        *self.last_child.borrow_mut() = Some(LastChild {
            checkpoint: out.to_path_buf(),
            model: child.model,
            optimizer: child.optimizer,
        });
        Ok(Some(ChildResult {
            index: candidate.index,
            loss: child.loss,
            record: steps::record(
                state.epoch,
                child.loss,
                child.dice,
                &child_state.alpha,
                started,
            ),
        }))
    }

    fn predict(
        &self,
        networks: [Deployed; 4],
        cases: &Path,
        ids: &[String],
        options: InferOptions,
        out: &Path,
    ) -> Result<()> {
        let pipeline = load_deployed::<B>(networks, &self.device)?;
        let found = discover(cases)?;
        let chosen = ids
            .iter()
            .map(|id| {
                found
                    .iter()
                    .find(|c| &c.id == id)
                    .ok_or_else(|| Error::case(id, format!("not found in {}", cases.display())))
            })
            .collect::<Result<Vec<_>>>()?;
        predict_cases(&pipeline, &chosen, options, out, &self.device, &Silent)?;
        Ok(())
    }
}

/// Whether two checkpoint directories hold the same checkpoint: their manifests (the sha256 of
/// every file) are equal. The grid names a parent by its copy in the run's store, the engine
/// its last child by where it saved it.
fn same_checkpoint(a: &Path, b: &Path) -> bool {
    let manifest = |dir: &Path| std::fs::read(dir.join("manifest.json")).ok();
    a == b || manifest(a).is_some_and(|m| Some(m) == manifest(b))
}
