pub mod static_files;
pub mod refusal;
