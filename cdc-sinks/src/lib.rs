//! Sinks for the pipeline runtime.
