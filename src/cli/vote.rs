//! `awsnet vote`: combine several models' label volumes into one per case, by majority vote.

use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use awsnet::atomic::StagedDir;
use awsnet::data::nifti_write::write_i16;
use awsnet::infer::vote::{check_out_is_not_an_input, match_inputs, vote_case};

#[derive(Args)]
pub struct VoteArgs {
    /// Directories of label volumes (.nii or .nii.gz, one per case, ids as in `awsnet eval`), at
    /// least 2. Per voxel the label most inputs predict wins; on a tie, the tied label of the
    /// earliest input listed here wins
    #[arg(long, value_name = "DIR", num_args = 1.., required = true)]
    inputs: Vec<PathBuf>,
    /// Where <case>_pred.nii.gz files are written (all at once when every case is voted), with the
    /// first input's header
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &VoteArgs) -> anyhow::Result<()> {
    let cases = match_inputs(&args.inputs)?;
    check_out_is_not_an_input(&args.out, &args.inputs)?;
    let bar = awsnet::progress::for_stderr("vote", "cases");
    bar.set_total(cases.len() as u64);
    // Dropped uncommitted on any error, which removes everything staged so far.
    let mut staged = StagedDir::new(&args.out)?;
    for case in &cases {
        let voted = vote_case(case)?;
        let name = format!("{}_pred.nii.gz", case.case);
        write_i16(&staged.file(&name), &voted.labels, &voted.header)?;
        bar.advance(1);
    }
    let written = staged.commit()?;
    bar.finish();
    print_out(&format!(
        "voted {} cases from {} inputs into {}\n",
        written.len(),
        args.inputs.len(),
        args.out.display()
    ))
}
