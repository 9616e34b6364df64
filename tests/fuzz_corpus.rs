//! The fuzz targets' committed corpus (`fuzz/corpus/<target>/`), replayed through the same
//! functions the cargo-fuzz targets call (`chatwire::fuzz`), on stable Rust, on every test run:
//! each seed as committed, every eighth of it cut off, and a fixed set of byte mutations. None
//! may panic. The coverage-guided runs themselves are `scripts/fuzz.sh`.
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// Mutated variants tried per seed.
const MUTATIONS: usize = 64;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read seed"))
        })
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no seeds for {target}");
    all
}

/// The seed, its truncations and its mutations, reproducibly.
fn variants(seed: &[u8], salt: u64) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    for eighth in 1..8 {
        out.push(seed[..seed.len() * eighth / 8].to_vec());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(salt);
    let interesting = [
        0u8, b'&', b'=', b'%', b'{', b'}', b'"', b'\n', 0xff, 0xf0, b'#',
    ];
    for _ in 0..MUTATIONS {
        let mut v = seed.to_vec();
        for _ in 0..rng.gen_range(1..4) {
            if v.is_empty() {
                v.push(interesting[rng.gen_range(0..interesting.len())]);
                continue;
            }
            let at = rng.gen_range(0..v.len());
            match rng.gen_range(0..4) {
                0 => v[at] = rng.gen(),
                1 => v[at] = interesting[rng.gen_range(0..interesting.len())],
                2 => {
                    v.remove(at);
                }
                _ => {
                    let end = (at + rng.gen_range(1..32)).min(v.len());
                    let chunk = v[at..end].to_vec();
                    v.splice(at..at, chunk);
                }
            }
        }
        out.push(v);
    }
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (i, (name, seed)) in seeds(target).into_iter().enumerate() {
        for (j, input) in variants(&seed, i as u64).into_iter().enumerate() {
            let outcome = std::panic::catch_unwind(|| run(&input));
            assert!(
                outcome.is_ok(),
                "{target}: seed {name}, variant {j} panicked on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn webhook_form_and_signature() {
    replay("webhook", chatwire::fuzz::webhook);
}

#[test]
fn studio_flow_loader() {
    replay("studio_flow", chatwire::fuzz::studio_flow);
}

#[test]
fn liquid_rendering() {
    replay("liquid", chatwire::fuzz::liquid);
}

#[test]
fn sms_segmenter_and_splitter() {
    replay("sms", chatwire::fuzz::sms);
}

#[test]
fn markdown_converter() {
    replay("markdown", chatwire::fuzz::markdown);
}
