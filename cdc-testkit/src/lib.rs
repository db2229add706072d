//! Throwaway real servers for tests.
