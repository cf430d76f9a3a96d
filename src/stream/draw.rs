//! Drawing on the overlay: face boxes, track ids, a bar under each face that speaks and a cross
//! on the sound source's mouth, straight into packed RGB (no font or cairo
//! dependency: the digits are a 3x5 bitmap font scaled up).

/// A packed RGB image with row stride, borrowed mutably.
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// A colour per track id, bright and distinct for neighbouring ids.
pub fn track_colour(id: u64) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 6] = [
        [255, 64, 64],
        [64, 220, 64],
        [64, 128, 255],
        [255, 200, 0],
        [230, 64, 230],
        [0, 220, 220],
    ];
    PALETTE[(id % PALETTE.len() as u64) as usize]
}

impl Canvas<'_> {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = y as usize * self.stride + x as usize * 3;
        self.data[i..i + 3].copy_from_slice(&c);
    }

    fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0.max(0)..y1.min(self.height as i64) {
            for x in x0.max(0)..x1.min(self.width as i64) {
                self.put(x, y, c);
            }
        }
    }

    /// The outline of `[x0, y0, x1, y1]`, `thickness` pixels wide, clipped to the image.
    pub fn rect(&mut self, b: [f32; 4], thickness: i64, c: [u8; 3]) {
        let (x0, y0, x1, y1) = (b[0] as i64, b[1] as i64, b[2] as i64, b[3] as i64);
        self.fill(x0, y0, x1, y0 + thickness, c);
        self.fill(x0, y1 - thickness, x1, y1, c);
        self.fill(x0, y0, x0 + thickness, y1, c);
        self.fill(x1 - thickness, y0, x1, y1, c);
    }

    /// The "speaking" mark: a solid bar under the box `[x0, y0, x1, y1]`, as wide as the box.
    pub fn speaking_bar(&mut self, b: [f32; 4], c: [u8; 3]) {
        let (x0, x1, y1) = (b[0] as i64, b[2] as i64, b[3] as i64);
        self.fill(x0, y1 + 3, x1, y1 + 11, c);
    }

    /// The sound-source mark: a white cross with a black outline centred on (x, y), visible on
    /// any face.
    pub fn source_marker(&mut self, x: i64, y: i64) {
        for (half, w, c) in [(9, 2, [0, 0, 0]), (8, 1, [255, 255, 255])] {
            self.fill(x - half, y - w, x + half + 1, y + w + 1, c);
            self.fill(x - w, y - half, x + w + 1, y + half + 1, c);
        }
    }

    /// A decimal number with its top-left corner at (x, y), each font pixel `scale` pixels wide.
    pub fn number(&mut self, x: i64, y: i64, n: u64, scale: i64, c: [u8; 3]) {
        let text = n.to_string();
        for (k, ch) in text.bytes().enumerate() {
            let glyph = DIGITS[(ch - b'0') as usize];
            let gx = x + k as i64 * 4 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        let (px, py) = (gx + col * scale, y + row as i64 * scale);
                        self.fill(px, py, px + scale, py + scale, c);
                    }
                }
            }
        }
    }
}

/// 3x5 digits, one row per entry, the high bit on the left.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A packed RGB canvas over `data`, `w` pixels wide, rows without padding.
    fn canvas(data: &mut [u8], w: usize, h: usize) -> Canvas<'_> {
        Canvas {
            data,
            width: w,
            height: h,
            stride: w * 3,
        }
    }

    #[test]
    fn rect_outline_and_clipping() {
        let (w, h) = (20, 10);
        let mut data = vec![0u8; w * h * 3];
        let mut c = canvas(&mut data, w, h);
        c.rect([2.0, 2.0, 30.0, 8.0], 1, [255, 0, 0]); // runs off the right edge
        let px = |x: usize, y: usize| data[y * w * 3 + x * 3];
        assert_eq!(px(2, 2), 255); // corner
        assert_eq!(px(10, 7), 255); // bottom edge
        assert_eq!(px(10, 5), 0); // inside stays untouched
        assert_eq!(px(19, 2), 255); // clipped top edge reaches the border
    }

    #[test]
    fn speaking_bar_sits_under_the_box() {
        let (w, h) = (40, 40);
        let mut data = vec![0u8; w * h * 3];
        let mut c = canvas(&mut data, w, h);
        c.speaking_bar([10.0, 5.0, 30.0, 20.0], [0, 9, 0]);
        let lit: Vec<(usize, usize)> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| data[y * w * 3 + x * 3 + 1] == 9)
            .collect();
        // 20 px wide (x 10..30), 8 px tall (y 23..31), nothing inside the box.
        assert_eq!(lit.len(), 20 * 8);
        assert!(
            lit.iter()
                .all(|&(x, y)| (10..30).contains(&x) && (23..31).contains(&y))
        );
    }

    #[test]
    fn source_marker_is_a_white_cross_outlined_in_black() {
        let (w, h) = (40, 40);
        let mut data = vec![100u8; w * h * 3];
        canvas(&mut data, w, h).source_marker(20, 20);
        let px = |x: usize, y: usize| data[y * w * 3 + x * 3];
        assert_eq!(px(20, 20), 255);
        assert_eq!(px(28, 20), 255); // arm end
        assert_eq!(px(29, 20), 0); // outline beyond it
        assert_eq!(px(24, 22), 0); // outline beside the horizontal arm
        assert_eq!(px(30, 20), 100); // untouched
        assert_eq!(px(25, 25), 100); // between the arms
    }

    #[test]
    fn digits_have_the_right_pixel_counts() {
        let (w, h) = (40, 10);
        let mut data = vec![0u8; w * h * 3];
        let mut c = canvas(&mut data, w, h);
        c.number(0, 0, 17, 1, [1, 1, 1]);
        let lit = data.chunks(3).filter(|p| p[0] == 1).count();
        assert_eq!(
            lit,
            8 + 7,
            "'1' has 8 and '7' has 7 lit pixels in the 3x5 font"
        );
    }
}
