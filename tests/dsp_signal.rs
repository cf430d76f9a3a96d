//! Pins the Rust streaming DSP (src/dsp) to the numpy reference through the committed fixture
//! `tests/fixtures/signal/` (regenerate with `python -m training.make_signal_fixture`).
//!
//! Frame mapping. Fixture frame t is the center=False frame over input `[160 t, 160 t + 512)`.
//! `StreamingStft` starts from 512 zeros, so its frame k (emitted after fed hop k) covers fed
//! samples `[160 k - 352, 160 k + 160)`. Feeding `LEAD_IN` = 128 zeros before the input makes that
//! input `[160 (k - 3), 160 (k - 3) + 512)`: Rust frame k is fixture frame k - 3. The fixture input
//! has 4032 = 512 + 160 * 22 samples (23 frames), so lead-in plus input is exactly 26 hops and the
//! last Rust frame is the last fixture frame.

use std::path::PathBuf;

use avsepd::dsp::{
    self, Complex32, HOP, N_BINS, N_FFT, STFT_ISTFT_DELAY, StreamingIstft, StreamingStft,
    WIN_LENGTH,
};

/// Zeros fed before the fixture input; `(LEAD_IN + 352) % 160 == 0` aligns the frame grids.
const LEAD_IN: usize = 128;
/// Rust frame index minus fixture frame index.
const FRAME_SHIFT: usize = (LEAD_IN + STFT_ISTFT_DELAY) / HOP;

fn read_f32(name: &str) -> Vec<f32> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "signal",
        name,
    ]
    .iter()
    .collect();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{name}: not a whole number of f32");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Interleaved `[frames, 257, 2]` file as frames of complex bins.
fn read_spectrum(name: &str) -> Vec<Vec<Complex32>> {
    let data = read_f32(name);
    assert_eq!(data.len() % (2 * N_BINS), 0, "{name}: not whole frames");
    data.chunks_exact(2 * N_BINS)
        .map(|frame| {
            frame
                .chunks_exact(2)
                .map(|c| Complex32::new(c[0], c[1]))
                .collect()
        })
        .collect()
}

/// The streaming analyser's frames for the fixture input, already mapped to fixture indices.
fn rust_frames(input: &[f32]) -> Vec<Vec<Complex32>> {
    let mut fed = vec![0.0f32; LEAD_IN];
    fed.extend_from_slice(input);
    assert_eq!(fed.len() % HOP, 0, "lead-in + input must be whole hops");
    let mut stft = StreamingStft::new();
    let mut frame = vec![Complex32::default(); N_BINS];
    let mut frames = Vec::new();
    for (k, hop) in fed.chunks_exact(HOP).enumerate() {
        stft.push_hop(hop, &mut frame);
        if k >= FRAME_SHIFT {
            frames.push(frame.clone());
        }
    }
    frames
}

/// Max over bins of `|a - b|`, relative to the largest magnitude in `b`.
fn frame_rel_error(a: &[Complex32], b: &[Complex32]) -> f32 {
    let scale = b.iter().map(|c| c.norm()).fold(0.0f32, f32::max);
    assert!(scale > 0.0);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).norm())
        .fold(0.0f32, f32::max)
        / scale
}

#[test]
fn fixture_layout_is_as_documented() {
    let input = read_f32("input.f32");
    assert_eq!(input.len(), N_FFT + HOP * 22);
    assert_eq!(read_spectrum("stft.f32").len(), 23);
    assert_eq!((LEAD_IN + input.len()) % HOP, 0);
    assert_eq!(FRAME_SHIFT, 3);
    let meta = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signal/meta.json"),
    )
    .expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json is JSON");
    let c = &meta["constants"];
    assert_eq!(c["n_fft"], N_FFT);
    assert_eq!(c["hop_length"], HOP);
    assert_eq!(c["win_length"], WIN_LENGTH);
    assert_eq!(c["n_bins"], N_BINS);
    assert_eq!(c["sample_rate"], dsp::SAMPLE_RATE);
    assert_eq!(c["compress_exponent"].as_f64(), Some(0.3));
}

#[test]
fn stft_matches_fixture() {
    let input = read_f32("input.f32");
    let expected = read_spectrum("stft.f32");
    let got = rust_frames(&input);
    assert_eq!(got.len(), expected.len());
    let mut worst = 0.0f32;
    for (t, (g, e)) in got.iter().zip(&expected).enumerate() {
        let err = frame_rel_error(g, e);
        assert!(err <= 1e-5, "frame {t}: relative error {err:e}");
        worst = worst.max(err);
    }
    eprintln!("stft: worst frame relative error {worst:e}");
}

#[test]
fn compression_matches_fixture() {
    // Compression alone, on the reference spectrum: isolates it from STFT rounding.
    let expected = read_spectrum("compressed.f32");
    for (t, (mut frame, e)) in read_spectrum("stft.f32")
        .into_iter()
        .zip(&expected)
        .enumerate()
    {
        dsp::compress_in_place(&mut frame);
        let err = frame_rel_error(&frame, e);
        assert!(err <= 1e-5, "frame {t}: relative error {err:e}");
    }
    // The whole model-input path on Rust frames. Compression magnifies the STFT's absolute
    // rounding in the quietest bins (d|X|^0.3 = 0.3 |X|^-0.7 d|X|), hence the wider tolerance.
    let input = read_f32("input.f32");
    let mut re = vec![0.0f32; N_BINS];
    let mut im = vec![0.0f32; N_BINS];
    let mut worst = 0.0f32;
    for (t, (frame, e)) in rust_frames(&input).iter().zip(&expected).enumerate() {
        dsp::to_model_channels(frame, &mut re, &mut im);
        let got: Vec<Complex32> = re
            .iter()
            .zip(&im)
            .map(|(&r, &i)| Complex32::new(r, i))
            .collect();
        let err = frame_rel_error(&got, e);
        assert!(err <= 1e-4, "frame {t}: relative error {err:e}");
        worst = worst.max(err);
    }
    eprintln!("model channels: worst frame relative error {worst:e}");
}

/// Pushes frames (fixture indices) into a fresh `StreamingIstft`. Its hop j is reference iSTFT
/// samples `[160 j, 160 j + 160)`: final and exact, the last 352 samples stay in flight.
fn rust_istft(frames: &[Vec<Complex32>]) -> Vec<f32> {
    let mut istft = StreamingIstft::new();
    let mut out = vec![0.0f32; frames.len() * HOP];
    for (frame, hop) in frames.iter().zip(out.chunks_exact_mut(HOP)) {
        istft.push_frame(frame, hop);
    }
    out
}

/// Max `|a - b|` relative to max `|b|`, over `[WIN_LENGTH, len(a))`: past the start-up ramp,
/// where the envelope is tiny and divides f32 rounding up (the reference's trailing samples are
/// not produced yet, see `rust_istft`).
fn signal_rel_error(a: &[f32], b: &[f32]) -> f32 {
    let range = WIN_LENGTH..a.len();
    let scale = b[range.clone()].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    a[range.clone()]
        .iter()
        .zip(&b[range])
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn istft_matches_fixture() {
    let frames = rust_frames(&read_f32("input.f32"));
    let got = rust_istft(&frames);
    let expected = read_f32("istft.f32");
    let err = signal_rel_error(&got, &expected);
    assert!(err <= 1e-4, "relative error {err:e}");
    eprintln!("istft: relative error {err:e}");
}

#[test]
fn masked_istft_matches_fixture() {
    let mask = read_spectrum("mask.f32");
    let mut frames = rust_frames(&read_f32("input.f32"));
    assert_eq!(mask.len(), frames.len());
    for (frame, m) in frames.iter_mut().zip(&mask) {
        let re: Vec<f32> = m.iter().map(|c| c.re).collect();
        let im: Vec<f32> = m.iter().map(|c| c.im).collect();
        dsp::apply_mask_in_place(frame, &re, &im);
    }
    let got = rust_istft(&frames);
    let expected = read_f32("masked_istft.f32");
    let err = signal_rel_error(&got, &expected);
    assert!(err <= 1e-4, "relative error {err:e}");
    eprintln!("masked istft: relative error {err:e}");
}

#[test]
fn passthrough_reproduces_input_delayed_by_352() {
    // Fixture input, then one extra hop of zeros so that more of it leaves the pipeline.
    let mut input = read_f32("input.f32");
    input.resize(input.len().next_multiple_of(HOP), 0.0);
    let mut stft = StreamingStft::new();
    let mut istft = StreamingIstft::new();
    let mut frame = vec![Complex32::default(); N_BINS];
    let mut output = vec![0.0f32; input.len()];
    for (hop, out) in input.chunks_exact(HOP).zip(output.chunks_exact_mut(HOP)) {
        stft.push_hop(hop, &mut frame);
        istft.push_frame(&frame, out);
    }
    let d = STFT_ISTFT_DELAY;
    // Everything after the first 352 output samples, i.e. every input sample from the first one.
    let snr = dsp::snr_db(&input[..input.len() - d], &output[d..]).expect("valid signals");
    assert!(snr >= 80.0, "passthrough SNR {snr} dB");
    // The metrics find the same delay on their own.
    let (lag, aligned) = dsp::aligned_snr_db(&input, &output, 1000).expect("valid signals");
    assert_eq!(lag, d as isize);
    assert!(aligned >= 80.0, "aligned SNR {aligned} dB");
    eprintln!("passthrough: SNR {snr:.1} dB, aligned SNR {aligned:.1} dB at lag {lag}");
}

#[test]
fn metrics_sanity() {
    let source = read_f32("input.f32");
    // A known delay, inserted as leading silence, is recovered exactly, in both directions.
    for lag in [0usize, 1, 160, 352, 999] {
        let mut delayed = vec![0.0f32; lag];
        delayed.extend_from_slice(&source);
        assert_eq!(dsp::best_lag(&source, &delayed, 1000), Ok(lag as isize));
        assert_eq!(dsp::best_lag(&delayed, &source, 1000), Ok(-(lag as isize)));
        let (found, snr) = dsp::aligned_snr_db(&source, &delayed, 1000).expect("valid");
        assert_eq!(found, lag as isize);
        assert_eq!(snr, f64::INFINITY);
    }
    // A scaled copy is perfect for SI-SDR but not for SNR.
    let scaled: Vec<f32> = source.iter().map(|v| v * 0.5).collect();
    let si_sdr = dsp::si_sdr_db(&source, &scaled).expect("valid");
    assert!(si_sdr > 100.0, "SI-SDR {si_sdr}");
    let snr = dsp::snr_db(&source, &scaled).expect("valid");
    assert!((snr - 6.0206).abs() < 1e-3, "SNR {snr}");
    // 10 s at 16 kHz with a 1234-sample delay: exact, and FFT-fast even in a debug build.
    let long: Vec<f32> = (0..160_000)
        .map(|n| source[n % source.len()] * (1.0 + (n as f32 * 1e-4).sin()))
        .collect();
    let mut delayed = vec![0.0f32; 1234];
    delayed.extend_from_slice(&long[..long.len() - 1234]);
    let started = std::time::Instant::now();
    assert_eq!(dsp::best_lag(&long, &delayed, 4000), Ok(1234));
    eprintln!("best_lag over 10 s: {:?}", started.elapsed());
}
