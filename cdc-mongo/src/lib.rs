//! MongoDB change-stream source. Not yet implemented.
