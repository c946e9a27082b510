//! Random and mutated inputs: `decode` must return, never panic. A panic fails the test.

mod common;

use bytes::Bytes;
use common::Xorshift;
use pgoutput::decode;

const ITERATIONS: usize = 5_000;

const VALID_TAGS: [u8; 10] = [b'B', b'C', b'O', b'R', b'Y', b'I', b'U', b'D', b'T', b'M'];

fn random_bytes(rng: &mut Xorshift, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    (0..len).map(|_| rng.next_byte()).collect()
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Xorshift::new(0x5EED_0001);
    for _ in 0..ITERATIONS {
        let bytes = Bytes::from(random_bytes(&mut rng, 64));
        let _ = decode(&bytes);
    }
}

/// Starts every input with a valid tag so that decoding gets past the tag check.
#[test]
fn random_body_after_valid_tag_never_panics() {
    let mut rng = Xorshift::new(0x5EED_0002);
    for _ in 0..ITERATIONS {
        let mut input = vec![VALID_TAGS[rng.below(VALID_TAGS.len())]];
        input.extend(random_bytes(&mut rng, 64));
        let _ = decode(&Bytes::from(input));
    }
}

/// Random bytes drawn mostly from the tuple kind and marker bytes and small
/// numbers, which reach the tuple and column loops more often than uniform bytes.
#[test]
fn random_protocol_bytes_never_panic() {
    const ALPHABET: [u8; 12] = [0, 1, 2, 3, b'n', b'u', b't', b'b', b'K', b'O', b'N', 0xff];
    let mut rng = Xorshift::new(0x5EED_0003);
    for _ in 0..ITERATIONS {
        let len = rng.below(96);
        let mut input = vec![VALID_TAGS[rng.below(VALID_TAGS.len())]];
        input.extend((0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]));
        let _ = decode(&Bytes::from(input));
    }
}

/// Overwrites one to four bytes of a valid sample with random values.
#[test]
fn mutated_samples_never_panic() {
    let samples = common::all_samples();
    let mut rng = Xorshift::new(0x5EED_0004);
    for _ in 0..ITERATIONS {
        let sample = &samples[rng.below(samples.len())];
        let mut input = sample.bytes.to_vec();
        let mutation_count = 1 + rng.below(4);
        for _ in 0..mutation_count {
            let index = rng.below(input.len());
            input[index] = rng.next_byte();
        }
        let _ = decode(&Bytes::from(input));
    }
}
