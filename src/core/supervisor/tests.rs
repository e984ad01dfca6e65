//! Decisions checked one event at a time (the simulator in tests/sim drives long random runs).
