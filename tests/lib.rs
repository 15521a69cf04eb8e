//! clawkeep's end-to-end suites, the ones that cross crates: a real OpenClaw fleet with its
//! brains in a real Garage and its models behind the gateway, runtime upgrades, the security
//! audit, the store's state-loss matrix, a hostile agent beside a neighbour, image builds and
//! a QEMU boot, and the workspace-wide rules (crate and module layers, the `unsafe`
//! boundary). They run the `clawkeep` binary cargo builds for the supervisor package; each
//! crate keeps the tests of its own code beside it. This library is empty: the suites are
//! the `[[test]]` targets of this package.

#![forbid(unsafe_code)]
