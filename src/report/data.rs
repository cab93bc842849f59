//! What a report shows, gathered from a finished run (by `crate::grid::results`) into plain
//! values, so rendering knows nothing of run directories.

use crate::das::controller::EpochRecord as SearchEpoch;
use crate::data::labels::Target;

use super::figures::overlay::SliceRow;

/// Everything `awsnet report` renders.
pub struct ReportData {
    pub run: String,
    pub job: String,
    pub seed: u64,
    /// Test cases evaluated.
    pub test_cases: usize,
    pub targets: Vec<Target>,
    pub methods: Vec<MethodData>,
    /// The statistics stage's comparisons (`awsnet stats` objects).
    pub comparisons: Vec<serde_json::Value>,
    /// Wall and CPU seconds per method, from `results/compute.json` (empty when absent).
    pub compute: Vec<(String, Cost)>,
    /// A few test slices, for the overlay figure.
    pub slices: Vec<SliceRow>,
    /// The awsnet version and commit that wrote the summary.
    pub provenance: String,
    /// Against the run this one replaced (`awsnet run --if-changed`).
    pub previous: Option<Previous>,
    /// Every deployed network that failed to learn, a sentence each (the summary's `health`).
    pub health: Vec<String>,
}

/// Tonight's results against the previous run's, on the test cases both evaluated.
pub struct Previous {
    /// The previous run's id.
    pub run: String,
    pub rows: Vec<Change>,
}

/// One method and metric, paired over the cases both runs evaluated.
pub struct Change {
    pub method: String,
    /// e.g. `scar_dice`.
    pub metric: String,
    pub n: usize,
    pub before: Option<f64>,
    pub now: Option<f64>,
    /// Two-sided paired t-test.
    pub p: Option<f64>,
    /// Worse tonight (lower overlap or larger distance) with p < 0.05.
    pub worse: bool,
}

/// One method of the grid.
pub struct MethodData {
    pub name: String,
    pub variant: Variant,
    /// Its `awsnet eval` document (what the paper tables read); with several replicates, each
    /// case's metrics averaged over them.
    pub eval: serde_json::Value,
    pub members: Vec<MemberData>,
    /// The replicates' own means, when the method was trained from several seeds.
    pub replicates: Option<Replicates>,
    /// An ensemble's vote against each member alone, per compared metric (empty otherwise).
    pub vote_vs_members: Vec<crate::eval::ensemble::VoteVsMembers>,
}

/// A method trained from several seeds: what each replicate reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Replicates {
    pub seeds: Vec<u64>,
    /// Per target, each replicate's mean Dice over the test cases (in seed order).
    pub dice: Vec<(Target, Vec<f64>)>,
}

/// What a method varies, as the job spec sets it: what places it in the paper's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub pam: bool,
    pub deep_supervision: bool,
    pub dcl: bool,
    /// `equal`, `fixed`, `decay`, `norl`, `genetic`, `gradient` or `das`; None: one head.
    pub weighting: Option<String>,
    pub ensemble: bool,
    /// The ASANs' input sequences, e.g. "DE + T2".
    pub sequences: String,
    /// Whether `sequences` is the default.
    pub default_sequences: bool,
}

/// One ensemble member of a method.
pub struct MemberData {
    pub member: usize,
    pub nets: Vec<NetData>,
}

/// One ASAN of a member: how it trained and what was deployed.
pub struct NetData {
    /// `scar` or `scar_edema`.
    pub net: String,
    pub deployed: Deployed,
    /// Per epoch: the training loss and validation Dice of the model kept.
    pub curve: Vec<CurvePoint>,
    /// First auto-weighted epoch (1-based), for a searching method.
    pub auto_from: Option<u64>,
    /// The controller's record per auto-weighted epoch (DAS and No-RL).
    pub search: Vec<SearchEpoch>,
}

/// The checkpoint a member deployed.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    /// Epochs it had trained.
    pub epoch: u64,
    /// The deep-supervision weights it trained its last epoch with.
    pub alpha: Vec<f64>,
    /// Relative to the run directory.
    pub checkpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub epoch: u64,
    pub loss: f64,
    /// The validation Dice the net was scored by (its config's `score`).
    pub val_dice: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub tasks: usize,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
}
