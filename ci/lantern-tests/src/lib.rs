//! No code: the tests under `tests/` drive moq-pub and moq-sub as libraries together, which
//! neither crate may do itself (they never depend on each other).
