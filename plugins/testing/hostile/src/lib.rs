//! Test-only plugin that misbehaves on purpose, chosen by the event's content:
//! `loop` spins forever, `trap` executes `unreachable`, `panic` panics, `alloc`
//! asks for 1 GiB. Anything else gets a small, well-formed verdict. The host must
//! contain each of these to the one call and keep serving.

use palisade_sdk::{Event, Heuristic, RuleHit, Settings, Verdict};

pub struct Hostile;

impl Heuristic for Hostile {
    fn new(_: &Settings) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn score(&self, event: &Event) -> Verdict {
        match event.content.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "trap" => trap(),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "alloc" => {
                let big = vec![1u8; 1 << 30];
                let sum = std::hint::black_box(&big).iter().step_by(4096).map(|b| u64::from(*b)).sum::<u64>();
                Verdict { score: (sum % 2) as f32, ..Verdict::default() }
            }
            _ => Verdict::from_hits(vec![RuleHit {
                rule: "hostile/ok".into(),
                weight: 0.1,
                category: None,
                detail: Some("behaved".into()),
            }]),
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    panic!("trap")
}

palisade_sdk::export_heuristic!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn ordinary_content_gets_a_verdict() {
        let h = Harness::<Hostile>::heuristic(&[]).unwrap();
        assert_eq!(h.score_text("hello").hits[0].rule, "hostile/ok");
    }
}
