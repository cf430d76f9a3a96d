//! CenterFace output decoding: heatmap peaks to boxes and landmarks, then non-maximum suppression.
//!
//! The network predicts, at stride 4, a face-centre heatmap, the log of the box height and width
//! (in stride units), a sub-cell offset of the centre, and the five landmarks as fractions of the
//! box size measured from its top-left corner (y before x in every channel pair).

use super::{BBox, Landmarks, iou};

/// Output stride of the network.
pub const STRIDE: f32 = 4.0;

/// One face in network-input pixels (the detector maps it back to the frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub landmarks: Landmarks,
}

/// The four output planes of one image, each `h x w`, channel-major.
pub struct Heads<'a> {
    pub heatmap: &'a [f32],
    pub scale: &'a [f32],
    pub offset: &'a [f32],
    pub landmarks: &'a [f32],
    pub w: usize,
    pub h: usize,
}

/// Append to `out` every heatmap cell above `threshold` that is a 3x3 local maximum, decoded.
/// Local maxima keep the candidate list short so NMS stays cheap on crowded frames.
pub fn decode(heads: &Heads, threshold: f32, out: &mut Vec<Detection>) {
    let (w, h) = (heads.w, heads.h);
    let plane = w * h;
    let hm = heads.heatmap;
    for cy in 0..h {
        for cx in 0..w {
            let i = cy * w + cx;
            let s = hm[i];
            if s <= threshold || !is_peak(hm, w, h, cx, cy) {
                continue;
            }
            let bh = heads.scale[i].exp() * STRIDE;
            let bw = heads.scale[plane + i].exp() * STRIDE;
            let yc = (cy as f32 + heads.offset[i] + 0.5) * STRIDE;
            let xc = (cx as f32 + heads.offset[plane + i] + 0.5) * STRIDE;
            let (x0, y0) = (xc - bw / 2.0, yc - bh / 2.0);
            let mut landmarks = [[0.0; 2]; 5];
            for (k, lm) in landmarks.iter_mut().enumerate() {
                let ly = heads.landmarks[2 * k * plane + i];
                let lx = heads.landmarks[(2 * k + 1) * plane + i];
                *lm = [x0 + lx * bw, y0 + ly * bh];
            }
            out.push(Detection {
                bbox: [x0, y0, x0 + bw, y0 + bh],
                score: s,
                landmarks,
            });
        }
    }
}

fn is_peak(hm: &[f32], w: usize, h: usize, cx: usize, cy: usize) -> bool {
    let s = hm[cy * w + cx];
    for y in cy.saturating_sub(1)..(cy + 2).min(h) {
        for x in cx.saturating_sub(1)..(cx + 2).min(w) {
            let v = hm[y * w + x];
            // Ties go to the first cell in scan order, so a flat peak yields one candidate.
            if v > s || (v == s && (y, x) < (cy, cx)) {
                return false;
            }
        }
    }
    true
}

/// Greedy NMS in place: keep the best-scoring box, drop any later one overlapping a kept box by
/// `iou_threshold` or more. Order of the survivors: descending score.
pub fn nms(dets: &mut Vec<Detection>, iou_threshold: f32) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..dets.len() {
        let cand = dets[i];
        if dets[..kept]
            .iter()
            .all(|k| iou(&k.bbox, &cand.bbox) < iou_threshold)
        {
            dets[kept] = cand;
            kept += 1;
        }
    }
    dets.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peak_decodes_to_box_and_landmarks() {
        let (w, h) = (4, 4);
        let plane = w * h;
        let mut heatmap = vec![0.0; plane];
        heatmap[5] = 0.9; // cx = 1, cy = 1
        heatmap[6] = 0.8; // neighbour, not a peak
        let mut scale = vec![0.0; 2 * plane];
        scale[5] = (2.0f32).ln(); // height 8 px
        scale[plane + 5] = (1.0f32).ln(); // width 4 px
        let offset = vec![0.0; 2 * plane];
        let mut lms = vec![0.0; 10 * plane];
        lms[5] = 0.5; // eye 0: y fraction
        lms[plane + 5] = 0.25; // eye 0: x fraction
        let heads = Heads {
            heatmap: &heatmap,
            scale: &scale,
            offset: &offset,
            landmarks: &lms,
            w,
            h,
        };
        let mut out = Vec::new();
        decode(&heads, 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        assert_eq!(d.bbox, [4.0, 2.0, 8.0, 10.0]); // centre (6, 6), 4 x 8
        assert_eq!(d.landmarks[0], [5.0, 6.0]);
    }

    #[test]
    fn nms_keeps_best_of_overlapping() {
        let mk = |x: f32, s: f32| Detection {
            bbox: [x, 0.0, x + 10.0, 10.0],
            score: s,
            landmarks: [[0.0; 2]; 5],
        };
        let mut d = vec![mk(0.0, 0.6), mk(1.0, 0.9), mk(50.0, 0.7)];
        nms(&mut d, 0.3);
        let scores: Vec<f32> = d.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
    }
}
