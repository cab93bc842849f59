//! Figures and tables for people to read. Reports render results computed elsewhere; they never
//! compute metrics themselves.

pub mod contact_sheet;
pub mod data;
pub mod document;
pub mod figures;
pub mod orderings;
pub mod tables;
