//! Sizes and durations.
