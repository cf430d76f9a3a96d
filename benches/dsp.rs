//! Cost of the streaming DSP per 10 ms hop (`HOP` = 160 samples at 16 kHz).
//!
//! Groups:
//! - `dsp_hop/stft_istft_pair`: `StreamingStft::push_hop` + `StreamingIstft::push_frame`, the
//!   whole per-hop DSP of a passthrough.
//! - `dsp_hop/bare_realfft_pair`: a 512-point realfft forward + inverse with pre-made plans and
//!   scratch, the floor the pair above is measured against (target: within 3x).
//! - `dsp_compress_257_bins/{compress_in_place,decompress_in_place}`: magnitude compression of one
//!   frame and its inverse, each on its own.
//!
//! Run: `cargo bench --bench dsp -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use avsepd::dsp::{
    Complex32, HOP, N_BINS, N_FFT, StreamingIstft, StreamingStft, compress_in_place,
    decompress_in_place,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use realfft::RealFftPlanner;

/// Deterministic noise-like test signal in [-0.5, 0.5].
fn signal(len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| 0.5 * ((n as f32 * 12.9898).sin() * 43_758.547).fract())
        .collect()
}

fn hop_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("dsp_hop");
    let hop = signal(HOP);

    let mut stft = StreamingStft::new();
    let mut istft = StreamingIstft::new();
    let mut spec = vec![Complex32::default(); N_BINS];
    let mut out = vec![0.0f32; HOP];
    group.bench_function("stft_istft_pair", |b| {
        b.iter(|| {
            stft.push_hop(black_box(&hop), &mut spec);
            istft.push_frame(&spec, &mut out);
            black_box(&out);
        })
    });

    let mut planner = RealFftPlanner::<f32>::new();
    let forward = planner.plan_fft_forward(N_FFT);
    let inverse = planner.plan_fft_inverse(N_FFT);
    let frame = signal(N_FFT);
    let mut time_in = forward.make_input_vec();
    let mut bins = forward.make_output_vec();
    let mut time_out = inverse.make_output_vec();
    let mut scratch_fwd = forward.make_scratch_vec();
    let mut scratch_inv = inverse.make_scratch_vec();
    group.bench_function("bare_realfft_pair", |b| {
        b.iter(|| {
            // realfft consumes its inputs as scratch, so the frame is copied in every time, as
            // the streaming code has to as well.
            time_in.copy_from_slice(black_box(&frame));
            let fwd = forward.process_with_scratch(&mut time_in, &mut bins, &mut scratch_fwd);
            let inv = inverse.process_with_scratch(&mut bins, &mut time_out, &mut scratch_inv);
            black_box((fwd.is_ok(), inv.is_ok(), &time_out));
        })
    });
    group.finish();
}

fn compress_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("dsp_compress_257_bins");
    let x = signal(2 * N_BINS);
    let frame: Vec<Complex32> = x
        .chunks_exact(2)
        .map(|p| Complex32::new(p[0] * 40.0, p[1] * 40.0))
        .collect();
    // Each iteration works on a fresh copy so that repeated application does not drift the
    // magnitudes towards 1; the copy is made outside the timed section.
    group.bench_function("compress_in_place", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |bins| compress_in_place(black_box(bins)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decompress_in_place", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |bins| decompress_in_place(black_box(bins)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, hop_benches, compress_benches);
criterion_main!(benches);
