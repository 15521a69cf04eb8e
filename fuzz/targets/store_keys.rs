//! Fuzz target: [`clawkeep_fuzz::store_keys`] on every input libFuzzer makes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clawkeep_fuzz::store_keys(data));
