//! `awsnet vote`: combine several models' label volumes into one per case, by majority vote.

use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use awsnet::infer::vote::{vote_dirs, VoteRule};

#[derive(Args)]
pub struct VoteArgs {
    /// Directories of label volumes (.nii or .nii.gz, one per case, ids as in `awsnet eval`), at
    /// least 2, in order: on a tie, the earliest input listed here decides
    #[arg(long, value_name = "DIR", num_args = 1.., required = true)]
    inputs: Vec<PathBuf>,
    /// nested: MyoPS codes voted region by region (LV region, myocardium, scar + edema, scar),
    /// each by a majority of the inputs; plurality: the most frequent label, for any label set
    #[arg(long, default_value = "nested", value_name = "RULE")]
    rule: VoteRule,
    /// Also write <case>_agreement.nii.gz here: per voxel, the fraction of inputs that agree
    /// with the voted label
    #[arg(long, value_name = "DIR")]
    agreement: Option<PathBuf>,
    /// Where <case>_pred.nii.gz files are written (all at once when every case is voted), with the
    /// first input's header
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &VoteArgs) -> anyhow::Result<()> {
    let bar = awsnet::progress::for_stderr("vote", "cases");
    let voted = vote_dirs(
        &args.inputs,
        args.rule,
        &args.out,
        args.agreement.as_deref(),
        bar.as_ref(),
    )?;
    bar.finish();
    print_out(&format!(
        "voted {} cases from {} inputs into {}\n",
        voted,
        args.inputs.len(),
        args.out.display()
    ))
}
