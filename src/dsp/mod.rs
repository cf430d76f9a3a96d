//! Streaming DSP: STFT / iSTFT and magnitude compression as docs/SIGNAL.md defines them.
