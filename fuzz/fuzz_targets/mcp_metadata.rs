#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| librechat_obo::fuzzing::mcp_metadata(data));
