//! `awsnet vote`: combine several models' label volumes into one per case, by majority vote.

use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use awsnet::atomic::StagedDir;
use awsnet::data::nifti_write::{write_f32, write_i16};
use awsnet::infer::vote::{check_out_is_not_an_input, match_inputs, vote_case, VoteRule};

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
    let cases = match_inputs(&args.inputs)?;
    check_out_is_not_an_input(&args.out, &args.inputs)?;
    let bar = awsnet::progress::for_stderr("vote", "cases");
    bar.set_total(cases.len() as u64);
    // Dropped uncommitted on any error, which removes everything staged so far.
    let mut staged = StagedDir::new(&args.out)?;
    let mut agreement = args.agreement.as_deref().map(StagedDir::new).transpose()?;
    for case in &cases {
        let voted = vote_case(case, args.rule)?;
        let name = format!("{}_pred.nii.gz", case.case);
        write_i16(&staged.file(&name), &voted.labels, &voted.header)?;
        if let Some(dir) = agreement.as_mut() {
            let name = format!("{}_agreement.nii.gz", case.case);
            write_f32(&dir.file(&name), &voted.agreement, &voted.header)?;
        }
        bar.advance(1);
    }
    let written = staged.commit()?;
    if let Some(dir) = agreement {
        dir.commit()?;
    }
    bar.finish();
    print_out(&format!(
        "voted {} cases from {} inputs into {}\n",
        written.len(),
        args.inputs.len(),
        args.out.display()
    ))
}
