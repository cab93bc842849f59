//! The binary's command handlers beyond the data commands: each turns parsed arguments into
//! library calls and prints or writes the result. No metric or statistic is computed here.

pub mod eval;
pub mod output;
pub mod predict;
pub mod stats;
pub mod table;
pub mod train;
