//! Training and architecture search for edgenas.
pub mod batch;
pub mod corpus;
pub mod checkpoint;
pub mod model;
pub mod nas;
pub mod report;
pub mod run;
pub mod train;
