//! Fuzz target: [`clawkeep_fuzz::fleet`] on every input libFuzzer makes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clawkeep_fuzz::fleet(data));
