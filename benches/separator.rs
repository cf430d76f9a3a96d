//! The shipped separator through ONNX Runtime from Rust, as the daemon will call it: one streaming
//! call per 40 ms chunk on one intra-op thread, the state outputs fed back as the next call's
//! state inputs (whichever `state_*` inputs the model declares). Prints ms per call at batch 1
//! and 4 (faces) and the real-time factor per face, RTF = ms per call / batch / 40 ms (the
//! issue's budget: RTF <= 0.05), then criterion timings.
//!
//! Run: `cargo bench --bench separator` (needs `make setup` for ONNX Runtime).

use criterion::{Criterion, criterion_group, criterion_main};
use ort::session::{Session, SessionInputValue, builder::GraphOptimizationLevel};
use ort::value::TensorRef;
use std::path::Path;
use std::time::Instant;

const BINS: usize = 257;
const CHUNK: usize = 4;
const ROI: usize = 48;
const CHUNK_MS: f64 = 40.0;

/// One recurrent state tensor of the model (`state_*` input, fed back from `<name>_out`).
struct State {
    name: String,
    out_name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// One face batch's inputs and states, kept between calls like the daemon's per-track state.
/// The states are whatever `state_*` inputs the model declares (the GRU, the previous ROI and,
/// with look-ahead, the histories), zero at the start.
struct Streams {
    batch: usize,
    mix: Vec<f32>,
    roi: Vec<f32>,
    states: Vec<State>,
}

impl Streams {
    fn new(session: &Session, batch: usize) -> Self {
        let states = session
            .inputs()
            .iter()
            .filter(|i| i.name().starts_with("state_"))
            .map(|i| {
                let dims = i.dtype().tensor_shape().expect("a tensor state").to_vec();
                let shape: Vec<usize> = std::iter::once(batch)
                    .chain(dims.iter().skip(1).map(|&d| d as usize))
                    .collect();
                State {
                    name: i.name().to_string(),
                    out_name: format!("{}_out", i.name()),
                    data: vec![0.0; shape.iter().product()],
                    shape,
                }
            })
            .collect();
        let mut s = 12345u32;
        let mut noise = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 8) as f32 / (1u32 << 24) as f32
                })
                .collect()
        };
        Streams {
            batch,
            mix: noise(batch * 2 * CHUNK * BINS),
            roi: noise(batch * ROI * ROI),
            states,
        }
    }

    fn call(&mut self, session: &mut Session) {
        let b = self.batch;
        let mut inputs: Vec<(&str, SessionInputValue)> = vec![
            (
                "mix",
                TensorRef::from_array_view(([b, 2, CHUNK, BINS], &self.mix[..]))
                    .unwrap()
                    .into(),
            ),
            (
                "roi",
                TensorRef::from_array_view(([b, 1, ROI, ROI], &self.roi[..]))
                    .unwrap()
                    .into(),
            ),
        ];
        for st in &self.states {
            let view = TensorRef::from_array_view((st.shape.clone(), &st.data[..])).unwrap();
            inputs.push((st.name.as_str(), view.into()));
        }
        let outputs = session.run(inputs).expect("separator call");
        let (_, mask) = outputs["mask"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(mask.len(), b * 2 * CHUNK * BINS);
        for st in &mut self.states {
            let (_, v) = outputs[st.out_name.as_str()]
                .try_extract_tensor::<f32>()
                .unwrap();
            st.data.copy_from_slice(v);
        }
    }
}

fn separator(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/separator.onnx");
    let env = avsepd::model::runtime::environment(None).expect("ONNX Runtime");
    let mut session = Session::builder(env)
        .unwrap()
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for batch in [1usize, 4] {
        let mut s = Streams::new(&session, batch);
        for _ in 0..20 {
            s.call(&mut session);
        }
        let n = 500;
        let t0 = Instant::now();
        for _ in 0..n {
            s.call(&mut session);
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!(
            "separator batch {batch}: {ms:.3} ms/call, RTF per face {:.4} (1 thread)",
            ms / batch as f64 / CHUNK_MS
        );
        c.bench_function(&format!("separator_call_batch{batch}"), |bench| {
            bench.iter(|| s.call(&mut session))
        });
    }
}

criterion_group!(benches, separator);
criterion_main!(benches);
