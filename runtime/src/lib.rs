//! Placeholder library; see docs/ARCHITECTURE.md for what this crate will hold.
